// ShardExecutor with SmolLM2-135M-Instruct (label model; skipped when the model is absent):
// four of the paper's custom prompts, full precision and int4 per-token asymmetric (the
// paper's sweep mode), 32 new tokens, its own chat template with its default system prompt;
// and two perplexity windows of 128 tokens on WikiText, full precision vs int4.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>

#include "common/environment.h"
#include "kernels/kv_quant_spec.h"
#include "tests/testing/model_files.h"
#include "worker/shard_executor.h"

namespace kvsafe::worker {
namespace {

orchestrator::Cell smollm2_cell(const std::string& kv) {
  orchestrator::Cell cell;
  cell.id = "0123456789abcdef-smollm2-" + kv;
  cell.model.name = "smollm2-135m";
  cell.model.path = testing::smollm2_gguf_path();
  cell.kv = kernels::parse_kv_label(kv);
  cell.kv_label = kv;
  cell.benchmark.name = "custom";
  cell.benchmark.limit = 4;
  cell.generation = orchestrator::GenerationSettings{.max_new_tokens = 32, .batch_size = 4};
  cell.n_prompts = 4;
  return cell;
}

TEST(ShardExecutorSmolLM2, FullPrecisionAndInt4FinishAndAreJudged) {
  const auto env = Environment::from_process();
  if (!std::filesystem::exists(testing::smollm2_gguf_path())) GTEST_SKIP() << "no " << testing::smollm2_gguf_path();
  if (!std::filesystem::exists(env.data_dir / "paper_repo" / "refusal.txt")) GTEST_SKIP() << "no datasets";
  ShardExecutor executor({.data_dir = env.data_dir, .threads = 2});
  for (const char* kv : {"none", "int4-ptok-asym"}) {
    const auto started = std::chrono::steady_clock::now();
    const db::ShardResult result = executor.run(smollm2_cell(kv), 0, 4);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::int64_t tokens = 0, refused = 0;
    ASSERT_EQ(result.generations.size(), 4u);
    for (const db::GenerationRow& row : result.generations) {
      ASSERT_TRUE(row.refused.has_value());
      EXPECT_GT(row.output_tokens, 0);
      EXPECT_LE(row.output_tokens, 32);
      EXPECT_GT(row.prompt_tokens, 20);  // SmolLM2's default system prompt is rendered
      EXPECT_FALSE(nlohmann::json::parse(row.judge_json).at("judge").get<std::string>().empty());
      tokens += row.output_tokens;
      refused += *row.refused ? 1 : 0;
    }
    std::cout << "[ report ] smollm2 " << kv << ": 4 prompts, " << tokens << " tokens in " << seconds
              << " s (model load included on the first), refused " << refused << "/4\n";
    for (const db::GenerationRow& row : result.generations) {
      std::cout << "    [" << row.prompt_id << "] " << row.output_text.substr(0, 100) << "\n";
    }
  }
  EXPECT_EQ(executor.loaded_model(), "smollm2-135m");
}

TEST(ShardExecutorSmolLM2, PerplexityWindowsFullPrecisionAndInt4) {
  const auto env = Environment::from_process();
  if (!std::filesystem::exists(testing::smollm2_gguf_path())) GTEST_SKIP() << "no " << testing::smollm2_gguf_path();
  if (!std::filesystem::exists(env.data_dir / "wikitext-2" / "wiki.test.raw")) GTEST_SKIP() << "no WikiText";
  ShardExecutor executor({.data_dir = env.data_dir, .threads = 2});
  double ppl[2] = {0, 0};
  int k = 0;
  for (const char* kv : {"none", "int4-ptok-asym"}) {
    orchestrator::Cell cell = smollm2_cell(kv);
    cell.id = "0123456789abcdef-smollm2-wiki-" + std::string(kv);
    cell.benchmark = {
        .name = "wikitext", .task = orchestrator::Task::kPerplexity, .limit = 2, .max_length = 128, .stride = 64};
    cell.generation.reset();
    cell.n_prompts = 2;
    const auto started = std::chrono::steady_clock::now();
    const db::ShardResult result = executor.run(cell, 0, 2);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ASSERT_EQ(result.ppl_windows.size(), 2u);
    EXPECT_EQ(result.ppl_windows[0].n_tokens, 127);
    EXPECT_EQ(result.ppl_windows[1].n_tokens, 64);
    const double nll = result.ppl_windows[0].nll_sum + result.ppl_windows[1].nll_sum;
    ppl[k++] = std::exp(nll / 191.0);
    std::cout << "[ report ] smollm2 wikitext " << kv << ": 2 windows (128/64) in " << seconds
              << " s (first: model load and corpus tokenization included), ppl " << ppl[k - 1] << "\n";
  }
  EXPECT_TRUE(std::isfinite(ppl[0]));
  EXPECT_GT(ppl[0], 1.0);
  EXPECT_LT(ppl[0], 200.0);  // a 135M instruct model on WikiText, short context: tens, not hundreds
  EXPECT_NE(ppl[0], ppl[1]);
  EXPECT_LT(ppl[1] / ppl[0], 1.5);  // int4 per-token: a small change
}

}  // namespace
}  // namespace kvsafe::worker
