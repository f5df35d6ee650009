// Sliding-window perplexity: the window arithmetic on hand-computed cases, and stories260K
// on a WikiText slice against a hand-written NLL loop over the forward logits.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "common/environment.h"
#include "common/error.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "eval/benchmark_registry.h"
#include "eval/perplexity.h"
#include "tests/testing/model_files.h"
#include "text/tokenizer.h"

namespace kvsafe::eval {
namespace {

struct Expected {
  std::int64_t begin, end, score_begin;
};

void expect_windows(std::int64_t tokens, std::int64_t max_length, std::int64_t stride,
                    const std::vector<Expected>& expected) {
  SCOPED_TRACE(std::to_string(tokens) + " tokens, max_length " + std::to_string(max_length) + ", stride " +
               std::to_string(stride));
  ASSERT_EQ(perplexity_window_count(tokens, max_length, stride), static_cast<std::int64_t>(expected.size()));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const PerplexityWindow w = perplexity_window(static_cast<std::int64_t>(i), tokens, max_length, stride);
    EXPECT_EQ(w.index, static_cast<std::int64_t>(i));
    EXPECT_EQ(w.begin, expected[i].begin) << "window " << i;
    EXPECT_EQ(w.end, expected[i].end) << "window " << i;
    EXPECT_EQ(w.score_begin, expected[i].score_begin) << "window " << i;
  }
}

TEST(PerplexityWindows, HandComputedCases) {
  // HF loop by hand: begin 0,2,4,6; end 4,6,8,10; trg_len 4,2,2,2, the first label of window 0 unscorable.
  expect_windows(10, 4, 2, {{0, 4, 1}, {2, 6, 4}, {4, 8, 6}, {6, 10, 8}});
  // The last window is short: [9, 11) scores only token 10.
  expect_windows(11, 4, 3, {{0, 4, 1}, {3, 7, 4}, {6, 10, 7}, {9, 11, 10}});
  // stride == max_length: disjoint windows, each first token unscored (HF's shifted labels).
  expect_windows(10, 4, 4, {{0, 4, 1}, {4, 8, 5}, {8, 10, 9}});
  // Shorter than one window.
  expect_windows(5, 8, 2, {{0, 5, 1}});
  expect_windows(8, 8, 2, {{0, 8, 1}});
  // Nothing to score.
  EXPECT_EQ(perplexity_window_count(1, 8, 2), 0);
  EXPECT_EQ(perplexity_window_count(0, 8, 2), 0);
  // The paper's settings over the plan's 300,000 tokens: docs/grid.md says 583.
  EXPECT_EQ(perplexity_window_count(300000, 2048, 512), 583);
}

TEST(PerplexityWindows, OverlappingWindowsScoreEveryTokenButTheFirstOnce) {
  for (std::int64_t tokens = 2; tokens < 120; ++tokens) {
    for (std::int64_t stride = 1; stride < 9; ++stride) {
      const std::int64_t max_length = 9;
      std::int64_t scored = 0;
      std::int64_t next = 1;
      for (std::int64_t i = 0; i < perplexity_window_count(tokens, max_length, stride); ++i) {
        const PerplexityWindow w = perplexity_window(i, tokens, max_length, stride);
        EXPECT_EQ(w.score_begin, next);
        EXPECT_LE(w.end - w.begin, max_length);
        scored += w.scored();
        next = w.end;
      }
      EXPECT_EQ(scored, tokens - 1) << tokens << " " << stride;
    }
  }
}

TEST(PerplexityWindows, OutOfRangeIsAnInputError) {
  EXPECT_THROW((void)perplexity_window(4, 10, 4, 2), InputError);
  EXPECT_THROW((void)perplexity_window(-1, 10, 4, 2), InputError);
  EXPECT_TRUE(std::isnan(perplexity_of(1.0, 0)));
  EXPECT_DOUBLE_EQ(perplexity_of(2.0 * std::log(3.0), 2), 3.0);
}

// The oracle: every scored token's -log softmax(logits[t - 1])[token t], written out in double.
double hand_nll(const engine::Model& model, const std::vector<engine::TokenId>& tokens, const PerplexityWindow& w) {
  std::vector<std::int64_t> ids(tokens.begin() + w.begin, tokens.begin() + w.end);
  const auto len = static_cast<std::int64_t>(ids.size());
  const at::Tensor input = at::from_blob(ids.data(), {1, len}, at::TensorOptions().dtype(at::kLong)).clone();
  engine::KvCache cache(model, 1);
  const at::Tensor logits =
      model.forward(input, at::Tensor(), cache, {.logits = engine::LogitsMode::kAll}).contiguous();
  const std::int64_t vocab = logits.size(2);
  const float* data = logits.data_ptr<float>();
  double nll = 0;
  for (std::int64_t t = w.score_begin; t < w.end; ++t) {
    const float* row = data + (t - 1 - w.begin) * vocab;
    double max = row[0];
    for (std::int64_t v = 1; v < vocab; ++v) max = std::max(max, static_cast<double>(row[v]));
    double sum = 0;
    for (std::int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - max);
    nll += max + std::log(sum) - static_cast<double>(row[ids[static_cast<std::size_t>(t - w.begin)]]);
  }
  return nll;
}

TEST(PerplexityStories, WikiTextSliceMatchesAHandWrittenLoop) {
  const auto data_dir = Environment::from_process().data_dir;
  if (!std::filesystem::exists(testing::stories260k_gguf_path())) GTEST_SKIP() << "no stories260K";
  std::string text;
  if (!read_corpus_text("wikitext", data_dir, CorpusJoin::kRowsJoined, &text).is_ok()) GTEST_SKIP() << "no WikiText";
  text.resize(text.rfind('\n', 3000));  // a slice of whole lines at the start of the test set
  const auto model = engine::Model::load(testing::stories260k_gguf_path(), {.threads = 1});
  const auto tokenizer = engine::Tokenizer::load(testing::stories260k_gguf_path());
  const std::vector<engine::TokenId> tokens = tokenize_corpus(*tokenizer, text);
  ASSERT_GT(tokens.size(), 300u);
  EXPECT_EQ(tokens.front(), *tokenizer->bos_id());  // the Llama tokenizer adds BOS once, as HF's tokenizer(text)

  const std::int64_t n = 300, max_length = 128, stride = 64;
  const std::int64_t windows = perplexity_window_count(n, max_length, stride);
  ASSERT_EQ(windows, 4);
  double nll = 0;
  std::int64_t scored = 0;
  for (std::int64_t i = 0; i < windows; ++i) {
    const PerplexityWindow w = perplexity_window(i, n, max_length, stride);
    const WindowNll got = score_window(*model, std::span(tokens).first(static_cast<std::size_t>(n)), w);
    const double want = hand_nll(*model, tokens, w);
    EXPECT_EQ(got.n_tokens, w.scored());
    EXPECT_NEAR(got.nll_sum, want, 1e-6 * std::abs(want) + 1e-4) << "window " << i;
    nll += got.nll_sum;
    scored += got.n_tokens;
  }
  EXPECT_EQ(scored, n - 1);
  const double ppl = perplexity_of(nll, scored);
  EXPECT_TRUE(std::isfinite(ppl));
  EXPECT_GT(ppl, 1.0);
  std::cout << "[ report ] stories260K WikiText ppl (first 300 tokens, 128/64): " << ppl << "\n";
}

TEST(PerplexityStories, MatchesTheReferenceForward) {
  // tests/oracles/perplexity_stories260k_reference.py: the same windows scored by the
  // independent pure-Python forward of ../shared/models/stories260K (float64), on a text of ours.
  if (!std::filesystem::exists(testing::stories260k_gguf_path())) GTEST_SKIP() << "no stories260K";
  std::ifstream in(std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests" / "eval" / "fixtures" /
                   "perplexity_stories260k_reference.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json oracle = nlohmann::json::parse(in);
  const auto model = engine::Model::load(testing::stories260k_gguf_path(), {.threads = 1});
  const auto tokenizer = engine::Tokenizer::load(testing::stories260k_gguf_path());
  const std::vector<engine::TokenId> tokens = tokenize_corpus(*tokenizer, oracle.at("text").get<std::string>());
  ASSERT_EQ(tokens, oracle.at("token_ids").get<std::vector<engine::TokenId>>());
  const auto n = static_cast<std::int64_t>(tokens.size());
  const auto max_length = oracle.at("max_length").get<std::int64_t>();
  const auto stride = oracle.at("stride").get<std::int64_t>();
  const auto& expected = oracle.at("windows");
  ASSERT_EQ(perplexity_window_count(n, max_length, stride), static_cast<std::int64_t>(expected.size()));
  double nll = 0, reference_nll = 0;
  std::int64_t scored = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const PerplexityWindow w = perplexity_window(static_cast<std::int64_t>(i), n, max_length, stride);
    EXPECT_EQ(w.begin, expected[i].at("begin").get<std::int64_t>());
    EXPECT_EQ(w.end, expected[i].at("end").get<std::int64_t>());
    EXPECT_EQ(w.score_begin, expected[i].at("score_begin").get<std::int64_t>());
    const WindowNll got = score_window(*model, tokens, w);
    const double want = expected[i].at("nll_sum").get<double>();
    EXPECT_EQ(got.n_tokens, expected[i].at("n_tokens").get<std::int64_t>());
    // float32 engine vs a float64 reference: the golden logits agree within 1e-4 absolute.
    EXPECT_NEAR(got.nll_sum, want, 1e-5 * std::abs(want)) << "window " << i;
    nll += got.nll_sum;
    reference_nll += want;
    scored += got.n_tokens;
  }
  std::cout << "[ report ] stories260K ppl on the oracle text: " << perplexity_of(nll, scored) << " (reference "
            << perplexity_of(reference_nll, scored) << ")\n";
}

}  // namespace
}  // namespace kvsafe::eval
