// ShardExecutor with SmolLM2-135M-Instruct (label model; skipped when the model is absent):
// four of the paper's custom prompts, full precision and int4 per-token asymmetric (the
// paper's sweep mode), 32 new tokens, its own chat template with its default system prompt;
// and two perplexity windows of 512 tokens on WikiText, full precision (against llama.cpp) vs int4.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "common/environment.h"
#include "kernels/kv_quant_spec.h"
#include "tests/testing/model_files.h"
#include "tests/worker/custom_prompts_cell.h"
#include "worker/shard_executor.h"

namespace kvsafe::worker {
namespace {

orchestrator::Cell smollm2_cell(const std::string& kv) {
  return test_cells::custom_prompts_cell(kv, {.prompts = 4,
                                              .batch_size = 4,
                                              .max_new_tokens = 32,
                                              .id_tag = "smollm2",
                                              .model_name = "smollm2-135m",
                                              .model_path = testing::smollm2_gguf_path(),
                                              .chat_template = std::nullopt});
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

// First-token divergence from full precision on SmolLM2 (worker/shard_generation.cpp), and what
// its reference costs: one full-precision prefill per batch, timed here on the same rendered
// prompts. Reported; asserted only as KL >= 0, int2 >= int4 >= int8 and MSE present.
TEST(ShardExecutorSmolLM2, FirstTokenDivergenceGrowsAsBitsFall) {
  const auto env = Environment::from_process();
  if (!std::filesystem::exists(testing::smollm2_gguf_path())) GTEST_SKIP() << "no " << testing::smollm2_gguf_path();
  if (!std::filesystem::exists(env.data_dir / "paper_repo" / "refusal.txt")) GTEST_SKIP() << "no datasets";
  constexpr std::int64_t kPrompts = 8;
  ShardExecutor executor({.data_dir = env.data_dir, .threads = 2});
  double mean_kl[3] = {0, 0, 0};
  int k = 0;
  for (const char* kv : {"int8-ptok-asym", "int4-ptok-asym", "int2-ptok-asym"}) {
    orchestrator::Cell cell = smollm2_cell(kv);
    cell.benchmark.limit = kPrompts;
    cell.n_prompts = kPrompts;
    const auto started = std::chrono::steady_clock::now();
    const db::ShardResult result = executor.run(cell, 0, kPrompts);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ASSERT_EQ(result.generations.size(), static_cast<std::size_t>(kPrompts));
    int changed = 0;
    double mse_key = 0, mse_value = 0;
    for (const db::GenerationRow& row : result.generations) {
      ASSERT_TRUE(row.first_token_kl && row.first_token_id && row.reference_first_token_id);
      ASSERT_TRUE(row.kv_mse_key && row.kv_mse_value);
      EXPECT_GE(*row.first_token_kl, 0.0);
      mean_kl[k] += *row.first_token_kl / kPrompts;
      changed += *row.first_token_id != *row.reference_first_token_id ? 1 : 0;
      mse_key += *row.kv_mse_key / kPrompts;
      mse_value += *row.kv_mse_value / kPrompts;
    }
    std::cout << "[ report ] smollm2 " << kv << ", " << kPrompts << " custom prompts: mean first-token KL "
              << mean_kl[k] << " nats, first token changed " << changed << "/" << kPrompts << ", mean KV MSE keys "
              << mse_key << " values " << mse_value << "; shard " << seconds << " s"
              << (k == 0 ? " (model load included)" : "") << "\n";
    ++k;
  }
  EXPECT_GE(mean_kl[1], mean_kl[0]);
  EXPECT_GE(mean_kl[2], mean_kl[1]);
  // What the reference costs beside a shard is measured by bench/shard_bench.
}

TEST(ShardExecutorSmolLM2, PerplexityWindowsFullPrecisionAndInt4) {
  // The first two windows (512 tokens, stride 256) of WikiText through a perplexity shard: at
  // full precision each window's NLL sum is llama.cpp's (tests/eval/fixtures/
  // perplexity_smollm2_llamacpp.json, the oracle of tests/eval/perplexity_smollm2_test.cpp,
  // with its tolerance); int4 per-token keys and values change them, a little.
  const auto env = Environment::from_process();
  if (!std::filesystem::exists(testing::smollm2_gguf_path())) GTEST_SKIP() << "no " << testing::smollm2_gguf_path();
  if (!std::filesystem::exists(env.data_dir / "wikitext-2" / "wiki.test.raw")) GTEST_SKIP() << "no WikiText";
  std::ifstream in(std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests" / "eval" / "fixtures" /
                   "perplexity_smollm2_llamacpp.json");
  ASSERT_TRUE(in);
  const nlohmann::json oracle = nlohmann::json::parse(in);
  const nlohmann::json* expected = nullptr;
  for (const auto& setting : oracle.at("settings")) {
    if (setting.at("max_length") == 512 && setting.at("stride") == 256) expected = &setting.at("windows");
  }
  ASSERT_NE(expected, nullptr);
  constexpr double kRelativeTolerance = 1e-5;  // as perplexity_smollm2_test.cpp, which says why
  ShardExecutor executor({.data_dir = env.data_dir, .threads = 2});
  double nll[2] = {0, 0};
  int k = 0;
  for (const char* kv : {"none", "int4-ptok-asym"}) {
    orchestrator::Cell cell = smollm2_cell(kv);
    cell.id = "0123456789abcdef-smollm2-wiki-" + std::string(kv);
    cell.benchmark = {
        .name = "wikitext", .task = orchestrator::Task::kPerplexity, .limit = 2, .max_length = 512, .stride = 256};
    cell.generation.reset();
    cell.n_prompts = 2;
    const db::ShardResult result = executor.run(cell, 0, 2);
    ASSERT_EQ(result.ppl_windows.size(), 2u);
    for (std::size_t w = 0; w < 2; ++w) {
      const nlohmann::json& want = expected->at(w);
      EXPECT_EQ(result.ppl_windows[w].n_tokens, want.at("n_tokens").get<std::int64_t>()) << kv << " window " << w;
      nll[k] += result.ppl_windows[w].nll_sum;
      if (k == 0) {
        const double relative = std::abs(result.ppl_windows[w].nll_sum - want.at("nll_sum").get<double>()) /
                                want.at("nll_sum").get<double>();
        EXPECT_LT(relative, kRelativeTolerance) << "window " << w << ": kvsafe " << result.ppl_windows[w].nll_sum
                                                << ", llama.cpp " << want.at("nll_sum").get<double>();
      }
    }
    std::cout << "[ report ] smollm2 wikitext " << kv << ": 2 windows (511 + 256 tokens), ppl "
              << std::exp(nll[k] / 767.0) << "\n";
    ++k;
  }
  EXPECT_NE(nll[0], nll[1]);
  // int4 per-token asymmetric with fp16 scales: a small change, not a broken model.
  EXPECT_LT(std::exp((nll[1] - nll[0]) / 767.0), 1.5);
}

}  // namespace
}  // namespace kvsafe::worker
