#pragma once
// The one table of benchmarks kvsafe knows: names, the tasks each serves, their subsets,
// where their files lie under the data directory ($KVSAFE_DATA), and how many prompts the
// loaders read from the pinned files. The grid parser and `kvsafe plan` size grids from it
// before any data is on disk (orchestrator/); the loaders read the files it names
// (eval/benchmark_registry.h). Torch-free and dependency-free (target kvsafe_benchmark_table),
// so both sides link the same facts; tests/eval/benchmark_registry_test.cpp checks every count
// against what the loaders read.
//
// What each name loads:
//   custom          paper_repo/{refusal,privacy,jailbreak}.txt, in that order: 19 + 21 + 23 = 63
//   advbench        advbench/harmful_behaviors.csv, column goal: 520
//   harmbench       harmbench/harmbench_behaviors_text_test.csv, FunctionalCategory == "standard": 159.
//                   The paper says "HarmBench 320 (standard only)"; 320 is the row count of the
//                   test file, of which 159 rows are standard (81 contextual, 80 copyright).
//                   kvsafe applies the filter the paper states, so it loads 159.
//   xstest          xstest/xstest_prompts.csv: 250 safe (benign) + 200 unsafe (harmful) = 450
//   jailbreakbench  jailbreakbench/behaviors.csv, column Goal: 100 harmful
//   strongreject    strongreject/strongreject_dataset.csv, column forbidden_prompt: 313
//   calibration     refusal_direction/splits/harmful_<split>.json + harmless_<split>.json
//                   (split train: 260 + 18793, val: 39 + 6264, test: 572 + 6266)
//   wikitext        wikitext-2/wiki.test.raw: a text corpus for perplexity
//   ifeval          IFEval's 541 prompts, each with its instructions (Prompt::ifeval_instructions)
// The paper_repo copies of AdvBench, HarmBench and XSTest are byte-identical to the upstream
// files (same sha256 in the manifest); kvsafe reads the upstream paths.

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace kvsafe::eval {

// kKeyMagnitudes is internal: no benchmark serves it and grids cannot ask for it; the diagnosis
// planner makes its cells (per-channel max |K| of the calibration prompts, the channel ablation).
enum class Task { kRefusal, kOverRefusal, kPerplexity, kIfeval, kRefusalDirection, kKeyMagnitudes };

// "refusal", "over_refusal", "perplexity", "ifeval", "refusal_direction", "key_magnitudes"
std::string_view to_string(Task task);
std::optional<Task> parse_task(std::string_view text);

// Whether a benchmark's prompts ask for harmful content (refusal expected).
enum class Harmfulness { kHarmful, kBenign, kMixed, kNotApplicable };

// What a loader reads: one format per loader file (loader_lines.cpp, loader_csv.cpp,
// loader_json.cpp, loader_ifeval.cpp for kIfevalJsonLines); kText is read whole;
// kConversations is a user's file named by the grid entry (loader_conversations.cpp), not data.
enum class BenchmarkFormat { kLines, kCsv, kJson, kIfevalJsonLines, kText, kConversations };

// A named part of a benchmark that a grid entry may select with `subset:` (Prompt::subset):
// XSTest's safe/unsafe prompts, the paper's custom refusal/privacy/jailbreak.
struct SubsetInfo {
  std::string_view name{};
  std::int64_t prompt_count = 0;
};

struct BenchmarkInfo {
  std::string_view name{};
  std::string_view description{};
  Task default_task = Task::kRefusal;
  std::vector<Task> tasks{};  // tasks valid for this benchmark (default first)
  Harmfulness harmfulness = Harmfulness::kHarmful;
  BenchmarkFormat format = BenchmarkFormat::kCsv;
  std::vector<std::string_view> files{};  // relative to the data directory (calibration: the train split)
  std::string_view licence{};
  // Prompts the loader yields from the pinned files; 0 for a corpus (wikitext: windows come from kWikitextPlanTokens).
  std::int64_t prompt_count = 0;
  // Prompts its task draws by default when that is fewer than the file holds: calibration's
  // refusal direction uses 128 harmful + 128 harmless (Arditi et al. 2024). 0: all of them.
  std::int64_t default_draw = 0;
  std::vector<SubsetInfo> subsets{};  // selectable parts, in file order; empty: none
  // > 0: harmful and harmless prompts are drawn apart, the same number of each (calibration:
  // the refusal direction is a difference of two means). A grid's `limit` and `sample` then
  // count per class, the default draw is default_draw / 2 of each, and this is the smaller
  // class's size (the most either can give). 0: one pool; counts are totals.
  std::int64_t per_class_prompt_count = 0;

  // Prompts a cell of this benchmark runs when the grid sets no subset, limit or sample.
  std::int64_t plan_prompt_count() const;
};

// WikiText-103 test tokens assumed by the plan (≈ 245k words; ≈ 300k tokens with a
// Llama-family tokenizer). The real count comes from the tokenizer at run time.
inline constexpr std::int64_t kWikitextPlanTokens = 300'000;

// Sliding-window evaluation windows over `tokens` (max_length, stride as in the paper's
// core/metrics.py: windows start every `stride` tokens until one reaches the end).
std::int64_t perplexity_windows(std::int64_t tokens, std::int64_t max_length, std::int64_t stride);

// Every benchmark, in documentation order.
std::span<const BenchmarkInfo> benchmark_table();
// The entry named `name`, or nullptr.
const BenchmarkInfo* find_benchmark(std::string_view name);
// The subset `name` of `info`, or nullptr.
const SubsetInfo* find_subset(const BenchmarkInfo& info, std::string_view name);
// The names, in table order (for "did you mean" suggestions and messages).
std::vector<std::string_view> benchmark_names();

}  // namespace kvsafe::eval
