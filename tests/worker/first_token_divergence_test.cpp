// The first-token divergence and KV MSE columns of generation rows (worker/shard_generation.cpp)
// on stories260K: the KL is recomputed here from two engine::Generator runs of the same
// rendered batches (full precision and the cell's quantizer), with ATen's log_softmax in
// double instead of eval::kl_divergence_logits.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/environment.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "engine/quantized_kv_path.h"
#include "kernels/kv_quant_spec.h"
#include "tests/testing/model_files.h"
#include "tests/worker/custom_prompts_cell.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "worker/cell_prompts.h"
#include "worker/shard_executor.h"

namespace kvsafe::worker {
namespace {

using orchestrator::Cell;

constexpr std::int64_t kPrompts = 8;
constexpr std::int64_t kBatch = 2;

std::filesystem::path data_dir() {
  return Environment::from_process().data_dir;
}

Cell stories_cell(const std::string& kv) {
  return test_cells::custom_prompts_cell(
      kv, {.prompts = kPrompts, .batch_size = kBatch, .max_new_tokens = 8, .id_tag = "divergence"});
}

// KL(P || Q) from ATen: log_softmax in double over the whole vocabulary.
double aten_kl(const std::vector<float>& p_logits, const std::vector<float>& q_logits) {
  const auto vocab = static_cast<std::int64_t>(p_logits.size());
  const at::Tensor p = at::from_blob(const_cast<float*>(p_logits.data()), {vocab}, at::kFloat).to(at::kDouble);
  const at::Tensor q = at::from_blob(const_cast<float*>(q_logits.data()), {vocab}, at::kFloat).to(at::kDouble);
  const at::Tensor log_p = at::log_softmax(p, 0), log_q = at::log_softmax(q, 0);
  return (log_p.exp() * (log_p - log_q)).sum().item<double>();
}

class FirstTokenDivergenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(testing::stories260k_gguf_path()) ||
        !std::filesystem::exists(data_dir() / "paper_repo" / "refusal.txt")) {
      return;
    }
    executor_ = new ShardExecutor({.data_dir = data_dir(), .threads = 1});
    rows_ = new std::map<std::string, std::vector<db::GenerationRow>>();
    for (const char* kv : {"none", "int8-ptok-asym", "int2-ptok-asym", "int2-ptok-asym-cache"}) {
      (*rows_)[kv] = executor_->run(stories_cell(kv), 0, kPrompts).generations;
    }
  }
  static void TearDownTestSuite() {
    delete executor_;
    delete rows_;
    executor_ = nullptr;
    rows_ = nullptr;
  }
  void SetUp() override {
    if (rows_ == nullptr) GTEST_SKIP() << "stories260K or ../shared/datasets missing";
  }
  static const std::vector<db::GenerationRow>& rows(const std::string& kv) { return rows_->at(kv); }

  static double mean_kl(const std::string& kv) {
    double sum = 0;
    for (const db::GenerationRow& row : rows(kv)) sum += row.first_token_kl.value();
    return sum / static_cast<double>(rows(kv).size());
  }
  static int changed(const std::string& kv) {
    int n = 0;
    for (const db::GenerationRow& row : rows(kv)) n += *row.first_token_id != *row.reference_first_token_id ? 1 : 0;
    return n;
  }

  static ShardExecutor* executor_;
  static std::map<std::string, std::vector<db::GenerationRow>>* rows_;
};

ShardExecutor* FirstTokenDivergenceTest::executor_ = nullptr;
std::map<std::string, std::vector<db::GenerationRow>>* FirstTokenDivergenceTest::rows_ = nullptr;

// The full-precision cell records the token it chose and nothing measured against itself.
TEST_F(FirstTokenDivergenceTest, FullPrecisionCellHasOnlyItsFirstToken) {
  ASSERT_EQ(rows("none").size(), static_cast<std::size_t>(kPrompts));
  for (const db::GenerationRow& row : rows("none")) {
    ASSERT_TRUE(row.first_token_id.has_value());
    EXPECT_GE(*row.first_token_id, 0);
    EXPECT_FALSE(row.reference_first_token_id.has_value());
    EXPECT_FALSE(row.first_token_kl.has_value());
    EXPECT_FALSE(row.kv_mse_key.has_value());
    EXPECT_FALSE(row.kv_mse_value.has_value());
  }
}

TEST_F(FirstTokenDivergenceTest, QuantizedCellsHaveEveryColumn) {
  for (const char* kv : {"int8-ptok-asym", "int2-ptok-asym", "int2-ptok-asym-cache"}) {
    SCOPED_TRACE(kv);
    ASSERT_EQ(rows(kv).size(), static_cast<std::size_t>(kPrompts));
    for (std::size_t i = 0; i < rows(kv).size(); ++i) {
      const db::GenerationRow& row = rows(kv)[i];
      ASSERT_TRUE(row.first_token_id.has_value());
      ASSERT_TRUE(row.reference_first_token_id.has_value());
      ASSERT_TRUE(row.first_token_kl.has_value());
      EXPECT_GE(*row.first_token_kl, 0.0);
      EXPECT_TRUE(std::isfinite(*row.first_token_kl));
      // The reference is exactly the full-precision cell's prefill: greedy, its first token.
      EXPECT_EQ(*row.reference_first_token_id, *rows("none")[i].first_token_id) << "prompt " << i;
      ASSERT_TRUE(row.kv_mse_key.has_value());
      ASSERT_TRUE(row.kv_mse_value.has_value());
      EXPECT_GT(*row.kv_mse_key, 0.0);
      EXPECT_GT(*row.kv_mse_value, 0.0);
      // Prompts of one batch share its forward calls and so their MSE.
      if (i % kBatch == 1) {
        EXPECT_EQ(*row.kv_mse_key, *rows(kv)[i - 1].kv_mse_key);
        EXPECT_EQ(*row.kv_mse_value, *rows(kv)[i - 1].kv_mse_value);
      }
    }
  }
}

// int2 is much further from full precision than int8, in KL, in changed first tokens, in MSE.
TEST_F(FirstTokenDivergenceTest, Int2DivergesMoreThanInt8) {
  const double kl8 = mean_kl("int8-ptok-asym"), kl2 = mean_kl("int2-ptok-asym");
  double mse8 = 0, mse2 = 0;
  for (std::size_t i = 0; i < rows("none").size(); ++i) {
    mse8 += *rows("int8-ptok-asym")[i].kv_mse_key;
    mse2 += *rows("int2-ptok-asym")[i].kv_mse_key;
  }
  std::cout << "[ report ] stories260K, " << kPrompts << " custom prompts: mean first-token KL int8 " << kl8
            << ", int2 " << kl2 << ", int2-cache (exact prefill) " << mean_kl("int2-ptok-asym-cache")
            << "; first tokens changed int8 " << changed("int8-ptok-asym") << ", int2 " << changed("int2-ptok-asym")
            << " of " << kPrompts << "; mean key MSE int8 " << mse8 / kPrompts << ", int2 " << mse2 / kPrompts << "\n";
  EXPECT_GT(kl2, 10 * kl8);
  EXPECT_GE(changed("int2-ptok-asym"), changed("int8-ptok-asym"));
  EXPECT_GT(mse2, 10 * mse8);
}

// Placement cache with exact prefill (vLLM): the prompt's prefill never reads the quantized
// cache, so the first token's distribution is full precision's; the store still quantized it.
TEST_F(FirstTokenDivergenceTest, ExactPrefillCacheLeavesTheFirstTokenAlone) {
  for (std::size_t i = 0; i < rows("none").size(); ++i) {
    const db::GenerationRow& row = rows("int2-ptok-asym-cache")[i];
    EXPECT_LT(*row.first_token_kl, 1e-9) << "prompt " << i;
    EXPECT_EQ(*row.first_token_id, *row.reference_first_token_id) << "prompt " << i;
  }
}

// The worker's KL against KL recomputed here from the engine: render the cell's prompts as the
// worker does (llama-2 template, its default system prompt), run the Generator over the same
// batches once with no KV path and once with make_kv_path(cell.kv), and take the KL of the
// first-step logits with ATen.
TEST_F(FirstTokenDivergenceTest, PreRopeCellsQuantizeTheKeysBeforeRope) {
  // The worker's MSE-recording wrapper must pass the path's pre-RoPE flag through: the
  // worker's answers equal the engine's own generation with the pre-RoPE path, and differ
  // from post-RoPE cache quantization.
  const std::string kv = "int2-ptok-asym-cache-prerope";
  const std::vector<db::GenerationRow> pre = executor_->run(stories_cell(kv), 0, kPrompts).generations;
  const auto model = engine::Model::load(testing::stories260k_gguf_path(), {.threads = 1});
  const auto tokenizer = engine::Tokenizer::load(testing::stories260k_gguf_path());
  const engine::ChatTemplate chat = engine::load_chat_template(testing::stories260k_gguf_path(), {.name = "llama-2"});
  const eval::Benchmark benchmark = load_cell_prompts(stories_cell(kv).benchmark, data_dir());
  std::vector<std::vector<engine::TokenId>> prompts;
  for (std::int64_t i = 0; i < kPrompts; ++i) {
    const std::vector<engine::ChatMessage> turns{
        {.role = engine::ChatRole::kUser, .content = benchmark.prompts[static_cast<std::size_t>(i)].text}};
    prompts.push_back(chat.tokenize(*tokenizer, turns, {.merge_system_into_first_user = true}).ids);
  }
  const std::unique_ptr<engine::KvPath> path = engine::make_kv_path(kernels::parse_kv_label(kv));
  ASSERT_TRUE(path->keys_before_rope());
  const auto out =
      engine::Generator(*model).generate(prompts, {.max_new_tokens = stories_cell(kv).generation->max_new_tokens,
                                                   .batch_size = kBatch,
                                                   .stop_tokens = engine::default_stop_tokens(*tokenizer),
                                                   .pad_id = tokenizer->eos_id().value_or(0),
                                                   .kv_path = path.get()});
  int differs_from_post_rope = 0;
  for (std::size_t i = 0; i < pre.size(); ++i) {
    EXPECT_EQ(pre[i].output_text, tokenizer->decode(out[i].tokens, {.skip_special = true})) << "prompt " << i;
    differs_from_post_rope += pre[i].output_text != rows("int2-ptok-asym-cache")[i].output_text ? 1 : 0;
  }
  EXPECT_GT(differs_from_post_rope, 0);
}

TEST_F(FirstTokenDivergenceTest, KlMatchesAnIndependentComputation) {
  const auto model = engine::Model::load(testing::stories260k_gguf_path(), {.threads = 1});
  const auto tokenizer = engine::Tokenizer::load(testing::stories260k_gguf_path());
  const engine::ChatTemplate chat = engine::load_chat_template(testing::stories260k_gguf_path(), {.name = "llama-2"});
  const eval::Benchmark benchmark = load_cell_prompts(stories_cell("none").benchmark, data_dir());
  std::vector<std::vector<engine::TokenId>> prompts;
  for (std::int64_t i = 0; i < kPrompts; ++i) {
    const std::vector<engine::ChatMessage> turns{
        {.role = engine::ChatRole::kUser, .content = benchmark.prompts[static_cast<std::size_t>(i)].text}};
    prompts.push_back(chat.tokenize(*tokenizer, turns, {.merge_system_into_first_user = true}).ids);
    ASSERT_EQ(static_cast<std::int64_t>(prompts.back().size()),
              rows("none")[static_cast<std::size_t>(i)].prompt_tokens);
  }
  const engine::Generator generator(*model);
  const auto first_logits = [&](engine::KvPath* path) {
    std::vector<std::vector<float>> out(prompts.size());
    engine::GenerationOptions options{
        .max_new_tokens = 1, .batch_size = kBatch, .pad_id = tokenizer->eos_id().value_or(0), .kv_path = path};
    options.on_first_logits = [&](std::size_t prompt, const float* logits, std::int64_t vocab) {
      out[prompt].assign(logits, logits + vocab);
    };
    (void)generator.generate(prompts, options);
    return out;
  };
  const std::vector<std::vector<float>> full = first_logits(nullptr);
  for (const char* kv : {"int8-ptok-asym", "int2-ptok-asym"}) {
    SCOPED_TRACE(kv);
    const std::unique_ptr<engine::KvPath> path = engine::make_kv_path(kernels::parse_kv_label(kv));
    const std::vector<std::vector<float>> quant = first_logits(path.get());
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const double expected = aten_kl(full[i], quant[i]);
      const double got = *rows(kv)[i].first_token_kl;
      EXPECT_NEAR(got, expected, 1e-9 * expected + 1e-12) << "prompt " << i;
      const auto argmax = std::max_element(full[i].begin(), full[i].end()) - full[i].begin();
      EXPECT_EQ(*rows(kv)[i].reference_first_token_id, argmax) << "prompt " << i;
      const auto quant_argmax = std::max_element(quant[i].begin(), quant[i].end()) - quant[i].begin();
      EXPECT_EQ(*rows(kv)[i].first_token_id, quant_argmax) << "prompt " << i;  // greedy
    }
  }
}

}  // namespace
}  // namespace kvsafe::worker
