#pragma once
// Shards: a cell's prompts cut into [begin, end) ranges, the unit a worker runs and the
// database commits in one transaction.

#include <cstdint>
#include <vector>

namespace kvsafe::orchestrator {

struct ShardRange {
  std::int64_t begin = 0;  // first prompt index, inclusive
  std::int64_t end = 0;    // one past the last prompt index

  std::int64_t size() const { return end - begin; }
  bool operator==(const ShardRange&) const = default;
};

inline constexpr std::int64_t kDefaultShardSize = 32;

// [0, n_prompts) cut into consecutive ranges of shard_size (the last may be shorter).
// Empty for n_prompts == 0. Throws InputError when n_prompts < 0 or shard_size < 1.
std::vector<ShardRange> shard_ranges(std::int64_t n_prompts, std::int64_t shard_size = kDefaultShardSize);

}  // namespace kvsafe::orchestrator
