// stories260K (a real, tiny Llama: GQA 8:4, untied lm_head) against the golden file of an
// independent implementation (../shared/models/stories260K/golden_stories260K.json: a pure
// Python float64 forward pass on the raw GGUF): first-step logits within 1e-4, greedy ids
// equal; plus the properties any exact engine must have: incremental decode equals a
// full prefill, left padding changes nothing, the batch does not couple sequences.

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include <fstream>

#include "engine/generator.h"
#include "tests/engine/forward_test_util.h"

namespace kvsafe::engine {
namespace {

struct GoldenCase {
  std::vector<TokenId> prompt;
  std::vector<float> logits;
  std::vector<TokenId> greedy;
};

class Stories : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto dir = test::stories_dir();
    if (!std::filesystem::exists(dir / "stories260K.gguf")) return;
    model_ = Model::load(dir / "stories260K.gguf").release();
    std::ifstream in(dir / "golden_stories260K.json");
    const auto golden = nlohmann::json::parse(in);
    cases_ = new std::vector<GoldenCase>();
    for (const auto& c : golden.at("cases")) {
      cases_->push_back({c.at("prompt_ids").get<std::vector<TokenId>>(),
                         c.at("first_step_logits").get<std::vector<float>>(),
                         c.at("greedy_ids").get<std::vector<TokenId>>()});
    }
  }
  static void TearDownTestSuite() {
    delete model_;
    delete cases_;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "stories260K not found under ../shared/models";
  }
  static Model* model_;
  static std::vector<GoldenCase>* cases_;
};
Model* Stories::model_ = nullptr;
std::vector<GoldenCase>* Stories::cases_ = nullptr;

TEST_F(Stories, ConfigAndDevice) {
  EXPECT_EQ(model_->config().num_layers, 5);
  EXPECT_EQ(model_->dtype(), at::kFloat);
  EXPECT_TRUE(model_->device().is_cpu());
  EXPECT_GT(model_->parameter_count(), 250000);
}

TEST_F(Stories, FirstStepLogitsMatchGolden) {
  for (const auto& c : *cases_) {
    const at::Tensor logits = test::all_logits(*model_, c.prompt).select(1, -1).squeeze(0);
    const at::Tensor expected = at::tensor(c.logits);
    EXPECT_LT(test::max_abs_diff(logits, expected), 1e-4);
  }
}

TEST_F(Stories, GreedyIdsMatchGolden) {
  Generator generator(*model_);
  std::vector<std::vector<TokenId>> prompts;
  for (const auto& c : *cases_) prompts.push_back(c.prompt);
  for (const std::int64_t batch : {1, 2}) {
    const auto out = generator.generate(
        prompts, {.max_new_tokens = static_cast<std::int64_t>(cases_->front().greedy.size()), .batch_size = batch});
    for (std::size_t i = 0; i < cases_->size(); ++i) {
      EXPECT_EQ(out[i].tokens, (*cases_)[i].greedy) << "case " << i << " batch " << batch;
      EXPECT_FALSE(out[i].stopped);
    }
  }
}

TEST_F(Stories, FirstLogitsCallbackGivesEachPromptsFirstStepLogits) {
  // Batched and left-padded, the callback still hands every prompt its own golden logits.
  Generator generator(*model_);
  std::vector<std::vector<TokenId>> prompts;
  for (const auto& c : *cases_) prompts.push_back(c.prompt);
  std::vector<int> calls(prompts.size(), 0);
  GenerationOptions options{.max_new_tokens = 2, .batch_size = 2};
  options.on_first_logits = [&](std::size_t prompt, const float* logits, std::int64_t vocab) {
    ASSERT_LT(prompt, prompts.size());
    ++calls[prompt];
    const auto& golden = (*cases_)[prompt].logits;
    ASSERT_EQ(vocab, static_cast<std::int64_t>(golden.size()));
    float worst = 0;
    for (std::int64_t v = 0; v < vocab; ++v)
      worst = std::max(worst, std::abs(logits[v] - golden[static_cast<std::size_t>(v)]));
    EXPECT_LT(worst, 1e-4) << "prompt " << prompt;
  };
  generator.generate(prompts, options);
  for (std::size_t i = 0; i < calls.size(); ++i) EXPECT_EQ(calls[i], 1) << "prompt " << i;
}

TEST_F(Stories, IncrementalDecodeEqualsPrefill) {
  const auto& ids = cases_->back().prompt;
  const at::Tensor full = test::all_logits(*model_, ids).squeeze(0);  // [n, vocab]
  KvCache cache(*model_, 1);
  const std::int64_t split = 3;
  std::vector<TokenId> head(ids.begin(), ids.begin() + split);
  auto batch = test::left_pad({head});
  at::Tensor logits = model_->forward(batch.tokens, batch.valid, cache, {.logits = LogitsMode::kAll});
  EXPECT_LT(test::max_abs_diff(logits.squeeze(0), full.narrow(0, 0, split)), 1e-4);
  for (std::size_t t = split; t < ids.size(); ++t) {
    const at::Tensor one = at::full({1, 1}, static_cast<std::int64_t>(ids[t]), at::kLong);
    logits = model_->forward(one, at::Tensor(), cache);
    EXPECT_LT(test::max_abs_diff(logits.squeeze(0), full.select(0, static_cast<std::int64_t>(t))), 1e-4) << t;
  }
  EXPECT_EQ(cache.tokens(), static_cast<std::int64_t>(ids.size()));
  EXPECT_EQ(cache.lengths()[0].item<std::int64_t>(), static_cast<std::int64_t>(ids.size()));
}

TEST_F(Stories, LeftPaddingDoesNotChangeLogits) {
  // Short prompt padded to the long one's length, in a batch with it; pad id 5 (a real token)
  // must not leak into the short sequence.
  const auto& a = cases_->front().prompt;
  const auto& b = cases_->back().prompt;
  const auto batch = test::left_pad({a, b}, 5);
  KvCache cache(*model_, 2);
  const at::Tensor logits = model_->forward(batch.tokens, batch.valid, cache, {.logits = LogitsMode::kAll});
  const auto pad = static_cast<std::int64_t>(b.size() - a.size());
  const at::Tensor alone_a = test::all_logits(*model_, a).squeeze(0);
  const at::Tensor alone_b = test::all_logits(*model_, b).squeeze(0);
  EXPECT_LT(test::max_abs_diff(logits[0].narrow(0, pad, static_cast<std::int64_t>(a.size())), alone_a), 1e-4);
  EXPECT_LT(test::max_abs_diff(logits[1], alone_b), 1e-4);
  EXPECT_FALSE(at::isnan(logits).any().item<bool>());
}

TEST_F(Stories, GenerationIsDeterministicAndSamplingSeeded) {
  Generator generator(*model_);
  const std::vector<std::vector<TokenId>> prompts = {cases_->front().prompt, cases_->back().prompt};
  GenerationOptions sampling{.max_new_tokens = 20, .batch_size = 2, .temperature = 0.8, .top_p = 0.9, .seed = 7};
  const auto first = generator.generate(prompts, sampling);
  const auto again = generator.generate(prompts, sampling);
  sampling.batch_size = 1;
  const auto alone = generator.generate(prompts, sampling);
  sampling.seed = 8;
  const auto other = generator.generate(prompts, sampling);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(first[i].tokens, again[i].tokens);
    EXPECT_EQ(first[i].tokens, alone[i].tokens) << "a prompt's sample must not depend on its batch";
    EXPECT_EQ(first[i].tokens.size(), 20U);
  }
  EXPECT_NE(first[0].tokens, other[0].tokens);
}

// transformers' repetition penalty, worked out by hand on the golden first-step logits (an
// independent implementation's): every distinct prompt id's logit divided by the penalty when
// positive, multiplied when negative; the first greedy token is the penalized argmax.
TEST_F(Stories, RepetitionPenaltyIsTransformersRule) {
  Generator generator(*model_);
  const double penalty = 10.0;
  int changed = 0;
  for (const GoldenCase& c : *cases_) {
    for (std::size_t k = 1; k < c.greedy.size(); ++k) {
      // The golden prompt and its first k greedy tokens: story text repeats its words.
      std::vector<TokenId> prompt = c.prompt;
      prompt.insert(prompt.end(), c.greedy.begin(), c.greedy.begin() + static_cast<std::ptrdiff_t>(k));
      std::vector<float> raw;
      GenerationOptions options{.max_new_tokens = 1, .repetition_penalty = penalty};
      options.on_first_logits = [&](std::size_t, const float* logits, std::int64_t vocab) {
        raw.assign(logits, logits + vocab);  // before the penalty
      };
      const auto out = generator.generate({prompt}, options);
      ASSERT_FALSE(raw.empty());
      std::vector<float> expected = raw;
      std::vector<bool> hit(expected.size(), false);
      for (const TokenId id : prompt) {
        if (hit[static_cast<std::size_t>(id)]) continue;
        hit[static_cast<std::size_t>(id)] = true;
        float& v = expected[static_cast<std::size_t>(id)];
        v = v < 0 ? static_cast<float>(v * penalty) : static_cast<float>(v / penalty);
      }
      const auto argmax = static_cast<TokenId>(std::max_element(expected.begin(), expected.end()) - expected.begin());
      const auto unpenalized = static_cast<TokenId>(std::max_element(raw.begin(), raw.end()) - raw.begin());
      changed += argmax != unpenalized ? 1 : 0;
      EXPECT_EQ(out[0].tokens.at(0), argmax);
    }
  }
  EXPECT_GT(changed, 0) << "the penalty changes no case's token: the test checks nothing";
  // 1.0 is no penalty: the golden greedy ids.
  const GoldenCase& c = cases_->front();
  const auto plain = generator.generate({c.prompt}, {.max_new_tokens = 2, .repetition_penalty = 1.0});
  EXPECT_EQ(plain[0].tokens, std::vector<TokenId>(c.greedy.begin(), c.greedy.begin() + 2));
}

// top_k before top_p, as transformers' warpers run: with k = 1 every draw is the argmax; with
// k = 2 no draw reaches the third token; ties at the k-th probability are all kept.
TEST(Sampling, TopKKeepsTheKMostProbableAndTheirTies) {
  const std::vector<float> logits = {0.0F, 3.0F, 2.0F, 1.0F, 2.0F};
  for (const double u : {0.0, 0.5, 0.999}) {
    EXPECT_EQ(sample_token(
                  logits.data(), 5, 1.0, 1.0, [&] { return u; }, 1),
              1);
  }
  // k = 2 keeps 1 (3.0) and both 2.0s (ids 2 and 4, tied at the 2nd): a draw near 1 is id 4.
  EXPECT_EQ(sample_token(
                logits.data(), 5, 1.0, 1.0, [] { return 0.999; }, 2),
            4);
  // Without top_k the same draw reaches the least probable token.
  EXPECT_EQ(sample_token(
                logits.data(), 5, 1.0, 1.0, [] { return 0.999; }, 0),
            0);
  std::vector<float> row = {2.0F, -2.0F, 1.0F};
  const std::vector<TokenId> seen = {0, 1, 0};
  apply_repetition_penalty(row.data(), 3, seen, 2.0);
  EXPECT_EQ(row, (std::vector<float>{1.0F, -4.0F, 1.0F}));  // id 0 once, not twice
}

TEST_F(Stories, StopTokensAndStreaming) {
  Generator generator(*model_);
  const auto& c = cases_->front();
  // Stop at the 5th greedy token: 4 kept, streamed in order.
  std::vector<TokenId> streamed;
  const auto out = generator.generate({c.prompt}, {.max_new_tokens = 50, .stop_tokens = {c.greedy[4]}},
                                      [&](std::size_t prompt, TokenId id) {
                                        EXPECT_EQ(prompt, 0U);
                                        streamed.push_back(id);
                                      });
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].stopped);
  EXPECT_EQ(out[0].stop_token, c.greedy[4]);
  EXPECT_EQ(out[0].tokens, std::vector<TokenId>(c.greedy.begin(), c.greedy.begin() + 4));
  EXPECT_EQ(streamed, out[0].tokens);
  const auto none = generator.generate({c.prompt}, {.max_new_tokens = 0});
  EXPECT_TRUE(none[0].tokens.empty());
}

TEST_F(Stories, BadInputIsRefused) {
  KvCache cache(*model_, 1);
  EXPECT_THROW(model_->forward(at::full({1, 2}, 512, at::kLong), at::Tensor(), cache), InputError);
  KvCache two(*model_, 2);
  EXPECT_THROW(model_->forward(at::zeros({1, 2}, at::kLong), at::Tensor(), two), InputError);
  EXPECT_THROW(Model::load(test::stories_dir() / "stories260K.gguf", {.device = "tpu"}), InputError);
  EXPECT_THROW(Model::load(test::stories_dir() / "stories260K.gguf", {.dtype = "int8"}), InputError);
  Generator generator(*model_);
  EXPECT_THROW(generator.generate({{}}, {}), InputError);
}

}  // namespace
}  // namespace kvsafe::engine
