// Sliding-window perplexity of SmolLM2-135M-Instruct against llama.cpp (label model; skipped
// when the model or WikiText is absent): the corpus tokens and each window's NLL sum, for the
// windows (512, stride 256) x 3 and (512, stride 512) x 2 over the start of WikiText-2 test and
// (2048, stride 2048) x 4 over its first 8192 tokens (the perplexity within 1%, each NLL within 1e-5),
// as tests/oracles/perplexity_smollm2_llamacpp.py computed them with llama-cpp-python on a
// float32 copy of the same Q4_1 weights (tests/eval/fixtures/perplexity_smollm2_llamacpp.json).

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "common/environment.h"
#include "common/sha256.h"
#include "engine/model.h"
#include "eval/benchmark_registry.h"
#include "eval/perplexity.h"
#include "tests/testing/model_files.h"
#include "text/tokenizer.h"

namespace kvsafe::eval {
namespace {

// NOTE: two float32 forward passes that differ only in summation order (ATen vs ggml matmuls,
// attention and RMSNorm kernels): measured worst relative difference of a window's NLL sum
// 1.7e-7 (2 threads, x86-64 AVX2/AVX-512), printed on every run. 1e-5 leaves room for other
// thread counts and instruction sets while still catching one token scored 0.02 nats off in a
// 511-token window; a tokenization or window-rule mistake moves the sum by percents.
constexpr double kRelativeTolerance = 1e-5;

TEST(PerplexitySmolLM2, MatchesLlamaCpp) {
  const auto env = Environment::from_process();
  if (!std::filesystem::exists(testing::smollm2_gguf_path())) GTEST_SKIP() << "no " << testing::smollm2_gguf_path();
  if (!std::filesystem::exists(env.data_dir / "wikitext-2" / "wiki.test.raw")) GTEST_SKIP() << "no WikiText";
  const std::filesystem::path fixture =
      std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests" / "eval" / "fixtures" / "perplexity_smollm2_llamacpp.json";
  std::ifstream in(fixture);
  ASSERT_TRUE(in) << fixture;
  const nlohmann::json oracle = nlohmann::json::parse(in);

  const auto model = engine::Model::load(testing::smollm2_gguf_path(), {.threads = 2});
  const auto tokenizer = engine::Tokenizer::load(testing::smollm2_gguf_path());
  std::string text;
  ASSERT_TRUE(read_corpus_text("wikitext", env.data_dir, CorpusJoin::kRowsJoined, &text).is_ok());
  const std::vector<engine::TokenId> tokens = tokenize_corpus(*tokenizer, text);  // as the worker does

  // The oracle stores the hash of its first token_count ids (",".join of the decimal ids), not
  // the ids themselves: they would spell out WikiText's text, which is never committed.
  const auto expected_count = oracle.at("token_count").get<std::size_t>();
  ASSERT_GE(tokens.size(), expected_count);
  std::string joined;
  for (std::size_t i = 0; i < expected_count; ++i) joined += (i == 0 ? "" : ",") + std::to_string(tokens[i]);
  ASSERT_EQ(sha256_hex(joined), oracle.at("tokens_sha256").get<std::string>())
      << "our tokenization of the first " << expected_count << " WikiText tokens differs from llama.cpp's";

  const auto n = static_cast<std::int64_t>(tokens.size());
  double worst = 0;
  // (begin, end, score_begin) -> its score: window [0, 512) is in two settings.
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, WindowNll> scored;
  for (const auto& setting : oracle.at("settings")) {
    const auto max_length = setting.at("max_length").get<std::int64_t>();
    const auto stride = setting.at("stride").get<std::int64_t>();
    std::int64_t index = 0;
    for (const auto& expected : setting.at("windows")) {
      SCOPED_TRACE("max_length " + std::to_string(max_length) + " stride " + std::to_string(stride) + " window " +
                   std::to_string(index));
      const PerplexityWindow window = perplexity_window(index++, n, max_length, stride);
      EXPECT_EQ(window.begin, expected.at("begin").get<std::int64_t>());
      EXPECT_EQ(window.end, expected.at("end").get<std::int64_t>());
      EXPECT_EQ(window.score_begin, expected.at("score_begin").get<std::int64_t>());
      const auto started = std::chrono::steady_clock::now();
      const auto key = std::make_tuple(window.begin, window.end, window.score_begin);
      if (!scored.contains(key)) scored[key] = score_window(*model, tokens, window);
      const WindowNll got = scored.at(key);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      const double want = expected.at("nll_sum").get<double>();
      EXPECT_EQ(got.n_tokens, expected.at("n_tokens").get<std::int64_t>());
      const double relative = std::abs(got.nll_sum - want) / std::abs(want);
      worst = std::max(worst, relative);
      EXPECT_LT(relative, kRelativeTolerance) << "kvsafe " << got.nll_sum << ", llama.cpp " << want;
      std::cout << "[ report ] window [" << window.begin << ", " << window.end << ") scoring " << got.n_tokens
                << ": nll kvsafe " << got.nll_sum << ", llama.cpp " << want << ", relative difference " << relative
                << ", ppl " << perplexity_of(got.nll_sum, got.n_tokens) << " (" << seconds << " s)\n";
    }
  }
  std::cout << "[ report ] smollm2 sliding-window NLL vs llama.cpp: worst relative difference " << worst << "\n";
  // The first 8192 tokens at the paper's window length: the perplexity itself, as a table shows it.
  double nll = 0, reference_nll = 0;
  std::int64_t count = 0;
  for (const auto& [key, score] : scored) {
    if (std::get<1>(key) - std::get<0>(key) != 2048) continue;
    nll += score.nll_sum;
    count += score.n_tokens;
  }
  for (const auto& setting : oracle.at("settings")) {
    if (setting.at("max_length").get<std::int64_t>() != 2048) continue;
    for (const auto& w : setting.at("windows")) reference_nll += w.at("nll_sum").get<double>();
  }
  ASSERT_EQ(count, 4 * 2047);
  const double ppl = perplexity_of(nll, count), reference = perplexity_of(reference_nll, count);
  EXPECT_LT(std::abs(ppl - reference) / reference, 0.01);
  std::cout << "[ report ] smollm2 WikiText ppl, first 8192 tokens (2048/2048): kvsafe " << ppl << ", llama.cpp "
            << reference << "\n";
}

}  // namespace
}  // namespace kvsafe::eval
