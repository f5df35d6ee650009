// What a refusal shard costs on SmolLM2-135M-Instruct, and how much of it the full-precision
// reference adds (Google Benchmark; moved here from tests/worker/shard_executor_model_test.cpp,
// where it asserted nothing). BM_Shard runs the first 8 of the paper's custom prompts, 32 new
// tokens, batch 4, judged, at full precision and at int4 per-token (which also runs the
// reference first tokens, KL and KV MSE); BM_ReferencePrefills the reference alone (the same
// rendered prompts, one new token). Counter `of_shard`: the reference's share of a shard.
//
//   build/bench/shard_bench   (model: scripts/fetch-model; data: $KVSAFE_DATA)

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "common/environment.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "tests/worker/custom_prompts_cell.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "worker/cell_prompts.h"
#include "worker/shard_executor.h"

namespace {

using kvsafe::Environment;
using kvsafe::worker::ShardExecutor;

constexpr std::int64_t kPrompts = 8;

kvsafe::orchestrator::Cell cell_for(const char* kv) {
  kvsafe::orchestrator::Cell cell =
      kvsafe::worker::test_cells::custom_prompts_cell(kv, {.prompts = kPrompts,
                                                           .batch_size = 4,
                                                           .max_new_tokens = 32,
                                                           .id_tag = "smollm2",
                                                           .model_name = "smollm2-135m",
                                                           .model_path = kvsafe::testing::smollm2_gguf_path(),
                                                           .chat_template = std::nullopt});
  return cell;
}

double shard_seconds = 0;  // the last full-precision shard, for BM_ReferencePrefills' ratio

void BM_Shard(benchmark::State& state) {
  static ShardExecutor executor({.data_dir = Environment::from_process().data_dir, .threads = 2});
  const kvsafe::orchestrator::Cell cell = cell_for(state.range(0) == 0 ? "none" : "int4-ptok-asym");
  (void)executor.run(cell, 0, kPrompts);  // the model load, out of the timing
  for (auto _ : state) {
    const auto started = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(executor.run(cell, 0, kPrompts));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (state.range(0) == 0) shard_seconds = seconds;
  }
  state.SetLabel(cell.kv_label);
}

void BM_ReferencePrefills(benchmark::State& state) {
  const auto env = Environment::from_process();
  const auto path = kvsafe::testing::smollm2_gguf_path();
  const auto model = kvsafe::engine::Model::load(path, {.threads = 2});
  const auto tokenizer = kvsafe::engine::Tokenizer::load(path);
  const kvsafe::engine::ChatTemplate chat = kvsafe::engine::load_chat_template(path);
  const kvsafe::eval::Benchmark benchmark = kvsafe::worker::load_cell_prompts(cell_for("none").benchmark, env.data_dir);
  std::vector<std::vector<kvsafe::engine::TokenId>> prompts;
  for (std::int64_t i = 0; i < kPrompts; ++i) {
    const std::vector<kvsafe::engine::ChatMessage> turns{
        {.role = kvsafe::engine::ChatRole::kUser, .content = benchmark.prompts[static_cast<std::size_t>(i)].text}};
    prompts.push_back(chat.tokenize(*tokenizer, turns, {.merge_system_into_first_user = true}).ids);
  }
  const kvsafe::engine::Generator generator(*model);
  const kvsafe::engine::GenerationOptions reference{
      .max_new_tokens = 1, .batch_size = 4, .pad_id = *tokenizer->eos_id()};
  (void)generator.generate(prompts, reference);  // warm-up
  double seconds = 0;
  for (auto _ : state) {
    const auto started = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(generator.generate(prompts, reference));
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  if (shard_seconds > 0) state.counters["of_shard"] = seconds / shard_seconds;
}

BENCHMARK(BM_Shard)->ArgNames({"int4"})->DenseRange(0, 1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ReferencePrefills)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (!std::filesystem::exists(kvsafe::testing::smollm2_gguf_path())) {
    std::fprintf(stderr, "shard_bench: %s not found (scripts/fetch-model)\n",
                 kvsafe::testing::smollm2_gguf_path().c_str());
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
