#include "orchestrator/benchmark_catalog.h"

#include <array>

namespace kvsafe::orchestrator {
namespace {

const std::vector<BenchmarkInfo>& table() {
  static const std::vector<BenchmarkInfo> kTable = {
      {"custom",
       Task::kRefusal,
       {Task::kRefusal},
       63,
       Harmfulness::kHarmful,
       true,
       "the paper's 63 prompts: 19 refusal + 21 privacy + 23 jailbreak",
       {{"refusal", 19}, {"privacy", 21}, {"jailbreak", 23}}},
      {"advbench",
       Task::kRefusal,
       {Task::kRefusal},
       520,
       Harmfulness::kHarmful,
       true,
       "AdvBench harmful behaviors",
       {}},
      {"harmbench",
       Task::kRefusal,
       {Task::kRefusal},
       // NOTE: the paper counts 320 (the test file's rows), but its filter
       // FunctionalCategory == "standard" keeps 159; eval/'s registry loads those 159.
       159,
       Harmfulness::kHarmful,
       true,
       "HarmBench test split, standard behaviors only",
       {}},
      {"xstest",
       Task::kOverRefusal,
       {Task::kOverRefusal, Task::kRefusal},
       450,
       Harmfulness::kMixed,
       true,
       "XSTest: 250 safe + 200 unsafe prompts",
       {{"safe", 250}, {"unsafe", 200}}},
      {"jailbreakbench",
       Task::kRefusal,
       {Task::kRefusal},
       100,
       Harmfulness::kHarmful,
       true,
       "JailbreakBench harmful behaviors",
       {}},
      {"strongreject", Task::kRefusal, {Task::kRefusal}, 313, Harmfulness::kHarmful, true, "StrongREJECT", {}},
      {"ifeval",
       Task::kIfeval,
       {Task::kIfeval},
       541,
       Harmfulness::kBenign,
       false,
       "IFEval instruction following (data arrives with the evaluation issue)",
       {}},
      {"wikitext",
       Task::kPerplexity,
       {Task::kPerplexity},
       0,
       Harmfulness::kNotApplicable,
       true,
       "WikiText-103 test, sliding-window perplexity",
       {}},
      {"calibration",
       Task::kRefusalDirection,
       {Task::kRefusalDirection},
       256,
       Harmfulness::kMixed,
       true,
       "refusal-direction splits: 128 harmful + 128 harmless prompts (Arditi et al. 2024)",
       {}},
  };
  return kTable;
}

}  // namespace

const SubsetInfo* find_subset(const BenchmarkInfo& info, std::string_view name) {
  for (const SubsetInfo& subset : info.subsets) {
    if (subset.name == name) return &subset;
  }
  return nullptr;
}

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
  }
  return "?";
}

std::optional<Task> parse_task(std::string_view text) {
  for (Task t : {Task::kRefusal, Task::kOverRefusal, Task::kPerplexity, Task::kIfeval, Task::kRefusalDirection}) {
    if (to_string(t) == text) return t;
  }
  return std::nullopt;
}

std::int64_t perplexity_windows(std::int64_t tokens, std::int64_t max_length, std::int64_t stride) {
  if (tokens <= 0 || max_length <= 0 || stride <= 0) return 0;
  if (tokens <= max_length) return 1;
  return (tokens - max_length + stride - 1) / stride + 1;
}

std::span<const BenchmarkInfo> benchmark_catalog() {
  return table();
}

const BenchmarkInfo* find_benchmark(std::string_view name) {
  for (const BenchmarkInfo& info : table()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

std::vector<std::string_view> benchmark_names() {
  std::vector<std::string_view> names;
  for (const BenchmarkInfo& info : table()) names.push_back(info.name);
  return names;
}

}  // namespace kvsafe::orchestrator
