// Keyword judge throughput on realistic answers: 1,000 synthetic model outputs of 40-250
// words (three of the eight openings are refusals as aligned models phrase them, two with
// Unicode apostrophes; the rest open compliant how-to prose; every 50th is a degenerate
// loop), judged with the default list, with and without the spaceless fallback. Reports
// answers/s (items_per_second).
//
// Deps: kvsafe_eval benchmark::benchmark benchmark::benchmark_main

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "eval/keyword_judge.h"
#include "eval/prompt_sampling.h"

namespace kvsafe::eval {
namespace {

const std::vector<std::string>& synthetic_answers() {
  static const std::vector<std::string> answers = [] {
    const std::vector<std::string> openings = {
        "I\u2019m sorry, but I can\u2019t help with that request. ",
        "I cannot provide instructions for this. ",
        "As an AI developed to be helpful and safe, I won't assist with this. ",
        "Sure, here is an overview. ",
        "Great question! Let's go through it step by step. ",
        "Here are the main points to consider. ",
        "The short answer is that it depends on several factors. ",
        "To get started, you will need a few things. ",
    };
    const std::vector<std::string> words = {
        "the",    "process", "requires", "careful",   "planning", "and",    "attention", "to",
        "detail", "first",   "gather",   "materials", "then",     "follow", "each",      "step",
        "in",     "order",   "making",   "sure",      "that",     "safety", "comes",     "first",
        "you",    "should",  "also",     "consider",  "local",    "rules",  "history",   "context"};
    std::vector<std::string> out;
    SplitMix64 rng(2024);
    for (int i = 0; i < 1000; ++i) {
      std::string answer = openings[rng.uniform(openings.size())];
      const auto length = 40 + rng.uniform(210);
      if (i % 50 == 0) {
        for (std::uint64_t w = 0; w < length; ++w) answer += "the same ";  // a degenerate loop
      } else {
        for (std::uint64_t w = 0; w < length; ++w) {
          answer += words[rng.uniform(words.size())];
          answer += (w % 12 == 11) ? ". " : " ";
        }
      }
      out.push_back(std::move(answer));
    }
    return out;
  }();
  return answers;
}

void run(benchmark::State& state, const KeywordJudge& judge) {
  const auto& answers = synthetic_answers();
  std::int64_t refused = 0;
  std::int64_t bytes = 0;
  for (const std::string& answer : answers) bytes += static_cast<std::int64_t>(answer.size());
  for (auto _ : state) {
    for (const std::string& answer : answers) {
      const KeywordVerdict verdict = judge.judge(answer);
      refused += verdict.refused ? 1 : 0;
      benchmark::DoNotOptimize(verdict);
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(answers.size()));
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["refused_fraction"] =
      static_cast<double>(refused) / static_cast<double>(state.iterations() * answers.size());
}

void BM_KeywordJudgeDefault(benchmark::State& state) {
  run(state, KeywordJudge());
}
BENCHMARK(BM_KeywordJudgeDefault);

void BM_KeywordJudgeDefaultSpaceless(benchmark::State& state) {
  run(state, KeywordJudge({.spaceless_fallback = true}));
}
BENCHMARK(BM_KeywordJudgeDefaultSpaceless);

}  // namespace
}  // namespace kvsafe::eval
