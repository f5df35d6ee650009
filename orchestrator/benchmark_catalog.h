#pragma once
// The benchmarks a grid may name, with their default task and prompt counts, so that
// `kvsafe plan` can size a grid before any data is on disk.
//
// NOTE: this is a static table. The evaluation issue replaces it by the real registry
// that reads the prompt files from $KVSAFE_DATA (counts then come from the files); the
// names, tasks and counts below are the paper's (reference/paper_and_quantizers.md §1.2).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvsafe::orchestrator {

enum class Task { kRefusal, kOverRefusal, kPerplexity, kIfeval, kRefusalDirection };

std::string_view to_string(Task task);  // "refusal", "over_refusal", "perplexity", "ifeval", "refusal_direction"
std::optional<Task> parse_task(std::string_view text);

// Whether a benchmark's prompts ask for harmful content (refusal expected).
enum class Harmfulness { kHarmful, kBenign, kMixed, kNotApplicable };

// A named part of a benchmark that a grid entry may select with `subset:` (eval/'s
// Prompt::subset): XSTest's safe/unsafe prompts, the paper's custom refusal/privacy/jailbreak.
struct SubsetInfo {
  std::string_view name{};
  std::int64_t prompt_count = 0;
};

struct BenchmarkInfo {
  std::string_view name{};
  Task default_task = Task::kRefusal;
  std::vector<Task> tasks{};      // tasks valid for this benchmark (default first)
  std::int64_t prompt_count = 0;  // prompts; 0 for wikitext (windows are computed from kWikitextPlanTokens)
  Harmfulness harmfulness = Harmfulness::kHarmful;
  bool data_available = true;  // false: planning works, running says the data is not there yet
  std::string_view description{};
  std::vector<SubsetInfo> subsets{};  // selectable parts, in file order; empty: none
};

// WikiText-103 test tokens assumed by the plan (≈ 245k words; ≈ 300k tokens with a
// Llama-family tokenizer). The real count comes from the tokenizer at run time.
inline constexpr std::int64_t kWikitextPlanTokens = 300'000;

// Sliding-window evaluation windows over `tokens` (max_length, stride as in the paper's
// core/metrics.py: windows start every `stride` tokens until one reaches the end).
std::int64_t perplexity_windows(std::int64_t tokens, std::int64_t max_length, std::int64_t stride);

// The subset `name` of `info`, or nullptr.
const SubsetInfo* find_subset(const BenchmarkInfo& info, std::string_view name);

// All catalog entries, in documentation order.
std::span<const BenchmarkInfo> benchmark_catalog();
// The entry named `name`, or nullptr.
const BenchmarkInfo* find_benchmark(std::string_view name);
// Catalog names, for "did you mean" suggestions.
std::vector<std::string_view> benchmark_names();

}  // namespace kvsafe::orchestrator
