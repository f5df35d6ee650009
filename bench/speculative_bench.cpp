// Greedy speculative decoding (engine/speculative_generator.h) against plain greedy decoding
// (engine/generator.h), batch 1, tokens/s: stories260K (and SmolLM2-135M-Instruct when the model
// cache has it) drafting for itself at full precision, k = 1, 2, 3, 4, 7, and with the draft's
// KV cache at int4 per token (its rollback re-derives the quantized store: the cost of
// KvCache::truncate on a quantized cache). A model drafting for itself cannot be faster than
// plain decoding (each proposal costs a decode step of the same model); the ratio measures
// the scheme's overhead: the verify call's k + 1 positions, the rollbacks, the draft's
// lagging token. Counters: tokens/s (real time) and, for speculative runs, the acceptance rate; plain runs
// with the int4 cache give the quantized draft's own cost. Numbers
// go into issue notes as ratios; never asserted.
//
//   build/bench/speculative_bench [--benchmark_filter=stories] [--benchmark_min_time=...]

#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/environment.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "engine/quantized_kv_path.h"
#include "engine/speculative_generator.h"
#include "kernels/kv_quant_spec.h"

namespace {

using kvsafe::engine::Generator;
using kvsafe::engine::Model;
using kvsafe::engine::SpeculativeGenerator;
using kvsafe::engine::TokenId;

constexpr std::int64_t kNewTokens = 64;  // per prompt

struct Subject {
  std::unique_ptr<Model> model;
  std::vector<std::vector<TokenId>> prompts;
};

// 0: stories260K, 1: SmolLM2-135M-Instruct (null when absent).
Subject* subject(std::int64_t which) {
  static Subject subjects[2];
  static bool loaded[2] = {false, false};
  Subject& s = subjects[which];
  if (!loaded[which]) {
    loaded[which] = true;
    const std::filesystem::path path =
        which == 0
            ? std::filesystem::path(KVSAFE_SOURCE_DIR) / ".." / "shared" / "models" / "stories260K" / "stories260K.gguf"
            : kvsafe::Environment::from_process().model_cache_dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
    if (std::filesystem::exists(path)) {
      s.model = Model::load(path);
      // Fixed ids (no tokenizer needed): 4 prompts of 8-20 tokens inside either vocabulary.
      for (int p = 0; p < 4; ++p) {
        std::vector<TokenId> ids{1};
        for (int t = 0; t < 8 + 4 * p; ++t) ids.push_back(static_cast<TokenId>(260 + (37 * (p + 1) * (t + 3)) % 240));
        s.prompts.push_back(ids);
      }
    }
  }
  return s.model ? &s : nullptr;
}

// range(0): model; range(1): 1 = the KV cache at int4 per token (the quantized draft's cost
// without speculation).
void BM_Plain(benchmark::State& state) {
  Subject* s = subject(state.range(0));
  if (s == nullptr) {
    state.SkipWithError("model not found");
    return;
  }
  const auto path = state.range(1) == 1
                        ? kvsafe::engine::make_kv_path(kvsafe::kernels::parse_kv_label("int4-ptok-asym-cache"))
                        : nullptr;
  state.SetLabel(std::string(state.range(0) == 0 ? "stories260K" : "SmolLM2-135M") +
                 (path ? ", KV int4-ptok-asym-cache" : ""));
  Generator generator(*s->model);
  std::int64_t tokens = 0;
  for (auto _ : state) {
    const auto out =
        generator.generate(s->prompts, {.max_new_tokens = kNewTokens, .batch_size = 1, .kv_path = path.get()});
    for (const auto& g : out) tokens += static_cast<std::int64_t>(g.tokens.size());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

// range(0): model; range(1): k; range(2): 1 = the draft's KV cache at int4 per token.
void BM_Speculative(benchmark::State& state) {
  Subject* s = subject(state.range(0));
  if (s == nullptr) {
    state.SkipWithError("model not found");
    return;
  }
  const auto draft_path = state.range(2) == 1
                              ? kvsafe::engine::make_kv_path(kvsafe::kernels::parse_kv_label("int4-ptok-asym-cache"))
                              : nullptr;
  state.SetLabel(std::string(state.range(0) == 0 ? "stories260K" : "SmolLM2-135M") +
                 (draft_path ? ", draft KV int4-ptok-asym-cache" : ", self-draft"));
  SpeculativeGenerator generator(*s->model, *s->model);
  std::int64_t tokens = 0, proposed = 0, accepted = 0;
  for (auto _ : state) {
    const auto out = generator.generate(
        s->prompts, {.max_new_tokens = kNewTokens, .draft_tokens = state.range(1), .draft_kv_path = draft_path.get()});
    for (std::size_t i = 0; i < out.generations.size(); ++i) {
      tokens += static_cast<std::int64_t>(out.generations[i].tokens.size());
      proposed += out.stats[i].proposed;
      accepted += out.stats[i].accepted;
    }
  }
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.counters["acceptance"] = proposed > 0 ? static_cast<double>(accepted) / static_cast<double>(proposed) : 0.0;
}

// NOTE: real time: the forward passes run on ATen's threads, not only the calling one.
BENCHMARK(BM_Plain)
    ->ArgNames({"model", "kv_int4"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Speculative)
    ->ArgNames({"model", "k", "draft_int4"})
    ->ArgsProduct({{0, 1}, {1, 2, 3, 4, 7}, {0}})
    ->Args({0, 4, 1})
    ->Args({1, 4, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
