#include "worker/cell_prompts.h"

#include <algorithm>
#include <utility>

#include "common/error.h"
#include "eval/prompt_sampling.h"

namespace kvsafe::worker {

eval::Benchmark load_cell_prompts(const orchestrator::BenchmarkSpec& benchmark, const std::filesystem::path& data_dir) {
  eval::Benchmark loaded;
  const Status status = eval::load_benchmark(benchmark.name, data_dir, {}, &loaded);
  if (!status.is_ok()) throw InputError("benchmark " + benchmark.name + ": " + status.message());
  std::vector<eval::Prompt> prompts = std::move(loaded.prompts);
  if (benchmark.subset) {
    std::erase_if(prompts, [&](const eval::Prompt& prompt) { return prompt.subset != *benchmark.subset; });
    KVSAFE_CHECK(!prompts.empty(), "benchmark ", benchmark.name, " has no prompts in subset '", *benchmark.subset,
                 "' under ", data_dir.string());
  }
  if (benchmark.limit && *benchmark.limit < static_cast<std::int64_t>(prompts.size())) {
    prompts.resize(static_cast<std::size_t>(*benchmark.limit));
  }
  if (benchmark.sample) {
    const auto picked = eval::sample_indices(prompts.size(), static_cast<std::size_t>(*benchmark.sample),
                                             static_cast<std::uint64_t>(benchmark.seed));
    std::vector<eval::Prompt> sampled;
    sampled.reserve(picked.size());
    for (std::size_t i : picked) sampled.push_back(std::move(prompts[i]));
    prompts = std::move(sampled);
  }
  loaded.prompts = std::move(prompts);
  return loaded;
}

}  // namespace kvsafe::worker
