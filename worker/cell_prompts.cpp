#include "worker/cell_prompts.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/sha256.h"
#include "eval/benchmark_table.h"
#include "eval/prompt_sampling.h"

namespace kvsafe::worker {
namespace {

// The first `limit` of `prompts`, then a seeded sample of `sample` of those (file order kept).
std::vector<eval::Prompt> limit_then_sample(std::vector<eval::Prompt> prompts, std::optional<std::int64_t> limit,
                                            std::optional<std::int64_t> sample, std::int64_t seed) {
  if (limit && *limit < static_cast<std::int64_t>(prompts.size())) prompts.resize(static_cast<std::size_t>(*limit));
  if (!sample) return prompts;
  const auto picked =
      eval::sample_indices(prompts.size(), static_cast<std::size_t>(*sample), static_cast<std::uint64_t>(seed));
  std::vector<eval::Prompt> sampled;
  sampled.reserve(picked.size());
  for (std::size_t i : picked) sampled.push_back(std::move(prompts[i]));
  return sampled;
}

}  // namespace

eval::Benchmark load_cell_prompts(const orchestrator::BenchmarkSpec& benchmark, const std::filesystem::path& data_dir) {
  eval::Benchmark loaded;
  if (benchmark.file) {  // conversations: a user's file, checked to be the one the grid was parsed with
    std::error_code ec;
    KVSAFE_CHECK(!std::filesystem::is_regular_file(*benchmark.file, ec) ||
                     sha256_file_hex(*benchmark.file) == benchmark.file_sha256,
                 "conversations file ", benchmark.file->string(),
                 " changed since the grid was read (its cells are named by its bytes)");
    loaded = eval::load_conversations(*benchmark.file, benchmark.file->string());
  } else {
    const Status status = eval::load_benchmark(benchmark.name, data_dir, {}, &loaded);
    if (!status.is_ok()) throw InputError("benchmark " + benchmark.name + ": " + status.message());
  }
  std::vector<eval::Prompt> prompts = std::move(loaded.prompts);
  if (benchmark.subset) {
    std::erase_if(prompts, [&](const eval::Prompt& prompt) { return prompt.subset != *benchmark.subset; });
    KVSAFE_CHECK(!prompts.empty(), "benchmark ", benchmark.name, " has no prompts in subset '", *benchmark.subset,
                 "' under ", data_dir.string());
  }
  const eval::BenchmarkInfo* info = eval::find_benchmark(benchmark.name);
  if (info != nullptr && info->per_class_prompt_count > 0) {
    std::vector<eval::Prompt> harmful, harmless;
    for (eval::Prompt& prompt : prompts) (prompt.harmful ? harmful : harmless).push_back(std::move(prompt));
    // Each class gives the same number: at most the smaller class's size, as the plan counts.
    const std::int64_t sample =
        std::min(info->per_class_prompt_count, benchmark.sample.value_or(info->default_draw / 2));
    prompts = limit_then_sample(std::move(harmful), benchmark.limit, sample, benchmark.seed);
    std::vector<eval::Prompt> drawn_harmless =
        limit_then_sample(std::move(harmless), benchmark.limit, sample, benchmark.seed);
    KVSAFE_CHECK(prompts.size() == drawn_harmless.size(), "benchmark ", benchmark.name, " under ", data_dir.string(),
                 ": drew ", prompts.size(), " harmful and ", drawn_harmless.size(),
                 " harmless prompts; the refusal direction needs as many of each");
    for (eval::Prompt& prompt : drawn_harmless) prompts.push_back(std::move(prompt));
  } else {
    prompts = limit_then_sample(std::move(prompts), benchmark.limit, benchmark.sample, benchmark.seed);
  }
  loaded.prompts = std::move(prompts);
  return loaded;
}

}  // namespace kvsafe::worker
