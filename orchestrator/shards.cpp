#include "orchestrator/shards.h"

#include <algorithm>

#include "common/error.h"

namespace kvsafe::orchestrator {

std::vector<ShardRange> shard_ranges(std::int64_t n_prompts, std::int64_t shard_size) {
  KVSAFE_CHECK(n_prompts >= 0, "shard_ranges: n_prompts must be >= 0, got ", n_prompts);
  KVSAFE_CHECK(shard_size >= 1, "shard_ranges: shard_size must be >= 1, got ", shard_size);
  std::vector<ShardRange> out;
  out.reserve(static_cast<std::size_t>((n_prompts + shard_size - 1) / shard_size));
  for (std::int64_t begin = 0; begin < n_prompts; begin += shard_size) {
    out.push_back({begin, std::min(n_prompts, begin + shard_size)});
  }
  return out;
}

}  // namespace kvsafe::orchestrator
