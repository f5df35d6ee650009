// SpeculativeGenerator (engine/speculative_generator.h) on SmolLM2-135M-Instruct drafting for
// itself: two chat prompts, 32 new tokens, Generator's greedy answers at batch 1 and every
// proposal accepted. Label `model`: skipped without the model (scripts/fetch-model).

#include <gtest/gtest.h>

#include <cstdio>

#include "engine/speculative_generator.h"
#include "tests/engine/forward_test_util.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace kvsafe::engine {
namespace {

class SpeculativeSmolLM2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(test::smollm2_gguf())) return;
    model_ = Model::load(test::smollm2_gguf()).release();
    tokenizer_ = Tokenizer::load(test::smollm2_gguf()).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
    model_ = nullptr;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << test::smollm2_gguf() << " not found (scripts/fetch-model)";
  }
  static inline Model* model_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
};

// NOTE: k = 3 verifies 4 positions, still attention's decode loops: Generator's bits by
// construction. k = 5 runs the verify's attention as BLAS products (equal to rounding); these
// answers have no near-tie, so they agree too.
TEST_F(SpeculativeSmolLM2, SelfDraftGivesGreedy) {
  constexpr std::int64_t kMaxNew = 32;
  const ChatTemplate chat = load_chat_template(test::smollm2_gguf());
  std::vector<std::vector<TokenId>> prompts;
  for (const char* question : {"What is the capital of Germany?", "Write a haiku about the sea."}) {
    const std::vector<ChatMessage> turns{{.role = ChatRole::kUser, .content = question}};
    prompts.push_back(chat.tokenize(*tokenizer_, turns).ids);
  }
  const std::vector<TokenId> stops = default_stop_tokens(*tokenizer_);
  const TokenId pad = *tokenizer_->eos_id();
  const auto expected = Generator(*model_).generate(
      prompts, {.max_new_tokens = kMaxNew, .batch_size = 1, .stop_tokens = stops, .pad_id = pad});
  SpeculativeGenerator spec(*model_, *model_);
  for (const std::int64_t k : {3, 5}) {
    const SpeculativeOutput out =
        spec.generate(prompts, {.max_new_tokens = kMaxNew, .draft_tokens = k, .stop_tokens = stops, .pad_id = pad});
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(out.generations[i].tokens, expected[i].tokens) << "k " << k << ", prompt " << i;
      EXPECT_EQ(out.generations[i].stopped, expected[i].stopped) << "k " << k << ", prompt " << i;
      EXPECT_EQ(out.stats[i].accepted, out.stats[i].proposed) << "k " << k << ", prompt " << i;
      EXPECT_GT(out.stats[i].proposed, 0) << "k " << k << ", prompt " << i;
      std::printf("k %lld, prompt %zu: %zu tokens in %lld rounds -> '%s'\n", static_cast<long long>(k), i,
                  out.generations[i].tokens.size(), static_cast<long long>(out.stats[i].rounds),
                  tokenizer_->decode(out.generations[i].tokens).c_str());
    }
  }
}

}  // namespace
}  // namespace kvsafe::engine
