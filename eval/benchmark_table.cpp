#include "eval/benchmark_table.h"

namespace kvsafe::eval {
namespace {

const std::vector<BenchmarkInfo>& table() {
  static const std::vector<BenchmarkInfo> kTable = {
      {.name = "custom",
       .description = "the paper's own prompts: 19 refusal + 21 privacy + 23 jailbreak",
       .default_task = Task::kRefusal,
       .tasks = {Task::kRefusal},
       .harmfulness = Harmfulness::kHarmful,
       .format = BenchmarkFormat::kLines,
       .files = {"paper_repo/refusal.txt", "paper_repo/privacy.txt", "paper_repo/jailbreak.txt"},
       .licence = "MIT (declared in the authors' pyproject.toml; no LICENSE file)",
       .prompt_count = 63,
       .subsets = {{"refusal", 19}, {"privacy", 21}, {"jailbreak", 23}}},
      {.name = "advbench",
       .description = "AdvBench harmful behaviors (column goal)",
       .default_task = Task::kRefusal,
       .tasks = {Task::kRefusal},
       .harmfulness = Harmfulness::kHarmful,
       .format = BenchmarkFormat::kCsv,
       .files = {"advbench/harmful_behaviors.csv"},
       .licence = "MIT",
       .prompt_count = 520},
      {.name = "harmbench",
       .description = "HarmBench text test split, FunctionalCategory == standard",
       .default_task = Task::kRefusal,
       .tasks = {Task::kRefusal},
       .harmfulness = Harmfulness::kHarmful,
       .format = BenchmarkFormat::kCsv,
       .files = {"harmbench/harmbench_behaviors_text_test.csv"},
       .licence = "MIT",
       .prompt_count = 159},
      {.name = "xstest",
       .description = "XSTest v2: 250 safe (benign) + 200 unsafe (harmful) prompts",
       .default_task = Task::kOverRefusal,
       .tasks = {Task::kOverRefusal, Task::kRefusal},
       .harmfulness = Harmfulness::kMixed,
       .format = BenchmarkFormat::kCsv,
       .files = {"xstest/xstest_prompts.csv"},
       .licence = "CC BY 4.0",
       .prompt_count = 450,
       .subsets = {{"safe", 250}, {"unsafe", 200}}},
      {.name = "jailbreakbench",
       .description = "JailbreakBench JBB-Behaviors, harmful split (column Goal)",
       .default_task = Task::kRefusal,
       .tasks = {Task::kRefusal},
       .harmfulness = Harmfulness::kHarmful,
       .format = BenchmarkFormat::kCsv,
       .files = {"jailbreakbench/behaviors.csv"},
       .licence = "MIT",
       .prompt_count = 100},
      {.name = "strongreject",
       .description = "StrongREJECT forbidden prompts",
       .default_task = Task::kRefusal,
       .tasks = {Task::kRefusal},
       .harmfulness = Harmfulness::kHarmful,
       .format = BenchmarkFormat::kCsv,
       .files = {"strongreject/strongreject_dataset.csv"},
       .licence = "MIT (declared by mirrors; upstream LICENSE not obtained)",
       .prompt_count = 313},
      {.name = "calibration",
       .description =
           "refusal_direction splits (Arditi et al. 2024): harmful + harmless, split train (default), val or test",
       .default_task = Task::kRefusalDirection,
       .tasks = {Task::kRefusalDirection},
       .harmfulness = Harmfulness::kMixed,
       .format = BenchmarkFormat::kJson,
       .files = {"refusal_direction/splits/harmful_train.json", "refusal_direction/splits/harmless_train.json"},
       .licence = "Apache-2.0 repo; harmful text MIT (+ MaliciousInstruct, none), harmless text Alpaca CC BY-NC 4.0",
       .prompt_count = 260 + 18793,
       .default_draw = 128 + 128,
       .per_class_prompt_count = 260},
      {.name = "conversations",
       .description =
           "a user's multi-turn conversations (JSONL, the grid entry's `file:`); the last user turn is judged",
       .default_task = Task::kRefusal,
       .tasks = {Task::kRefusal, Task::kOverRefusal},
       .harmfulness = Harmfulness::kMixed,
       .format = BenchmarkFormat::kConversations,
       .licence = "the user's"},
      {.name = "wikitext",
       .description = "WikiText-2/103 raw test text (one shared test set), for sliding-window perplexity",
       .default_task = Task::kPerplexity,
       .tasks = {Task::kPerplexity},
       .harmfulness = Harmfulness::kNotApplicable,
       .format = BenchmarkFormat::kText,
       .files = {"wikitext-2/wiki.test.raw"},
       .licence = "CC BY-SA 3.0"},
      {.name = "ifeval",
       .description = "IFEval instruction following: 541 prompts with 25 kinds of verifiable instruction",
       .default_task = Task::kIfeval,
       .tasks = {Task::kIfeval},
       .harmfulness = Harmfulness::kBenign,
       .format = BenchmarkFormat::kIfevalJsonLines,
       .files = {"ifeval/input_data.jsonl"},
       .licence = "Apache-2.0",
       .prompt_count = 541},
  };
  return kTable;
}

constexpr Task kTasks[] = {Task::kRefusal, Task::kOverRefusal,      Task::kPerplexity,
                           Task::kIfeval,  Task::kRefusalDirection, Task::kKeyMagnitudes};

}  // namespace

std::string_view to_string(Task task) {
  switch (task) {
    case Task::kRefusal:
      return "refusal";
    case Task::kOverRefusal:
      return "over_refusal";
    case Task::kPerplexity:
      return "perplexity";
    case Task::kIfeval:
      return "ifeval";
    case Task::kRefusalDirection:
      return "refusal_direction";
    case Task::kKeyMagnitudes:
      return "key_magnitudes";
  }
  return "?";
}

std::optional<Task> parse_task(std::string_view text) {
  for (const Task task : kTasks) {
    if (to_string(task) == text) return task;
  }
  return std::nullopt;
}

std::int64_t BenchmarkInfo::plan_prompt_count() const {
  return default_draw > 0 ? default_draw : prompt_count;
}

std::int64_t perplexity_windows(std::int64_t tokens, std::int64_t max_length, std::int64_t stride) {
  if (tokens <= 0 || max_length <= 0 || stride <= 0) return 0;
  if (tokens <= max_length) return 1;
  return (tokens - max_length + stride - 1) / stride + 1;
}

std::span<const BenchmarkInfo> benchmark_table() {
  return table();
}

const BenchmarkInfo* find_benchmark(std::string_view name) {
  for (const BenchmarkInfo& info : table()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

const SubsetInfo* find_subset(const BenchmarkInfo& info, std::string_view name) {
  for (const SubsetInfo& subset : info.subsets) {
    if (subset.name == name) return &subset;
  }
  return nullptr;
}

std::vector<std::string_view> benchmark_names() {
  std::vector<std::string_view> names;
  for (const BenchmarkInfo& info : table()) names.push_back(info.name);
  return names;
}

}  // namespace kvsafe::eval
