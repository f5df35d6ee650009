// SmolLM2-135M-Instruct's tokenizer, loaded from its GGUF, against HF `tokenizers` on the
// committed oracle (tests/oracles/tokenizer_smollm2_oracle.py). Label `model`: skipped
// when scripts/fetch-model has not put the file in the model cache.

#include "tests/engine/tokenizer_test_util.h"
#include "tests/testing/model_files.h"

namespace kvsafe::engine {
namespace {

std::filesystem::path smollm2_path() {
  return kvsafe::testing::smollm2_gguf_path();
}

class SmolLM2Tokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::filesystem::exists(smollm2_path())) tokenizer_ = Tokenizer::load(smollm2_path()).release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (tokenizer_ == nullptr) {
      GTEST_SKIP() << smollm2_path().string() << " is absent: run scripts/fetch-model (or set KVSAFE_MODEL_CACHE)";
    }
  }
  static Tokenizer* tokenizer_;
};
Tokenizer* SmolLM2Tokenizer::tokenizer_ = nullptr;

TEST_F(SmolLM2Tokenizer, MatchesHfTokenizersOnOracleStrings) {
  const nlohmann::json oracle = test::read_json(test::fixture("tokenizer_smollm2_oracle.json"));
  const auto& cases = oracle.at("cases");
  ASSERT_GE(cases.size(), 300u);
  for (const auto& c : cases) test::expect_oracle_case(*tokenizer_, c);
}

TEST_F(SmolLM2Tokenizer, ConfigurationFromGguf) {
  EXPECT_EQ(tokenizer_->vocab_size(), 49152u);
  EXPECT_EQ(tokenizer_->bos_id(), 1);
  EXPECT_EQ(tokenizer_->eos_id(), 2);
  EXPECT_EQ(tokenizer_->pad_id(), 2);    // tokenizer.ggml.padding_token_id: <|im_end|>, as its EOS
  EXPECT_FALSE(tokenizer_->adds_bos());  // tokenizer.ggml.add_bos_token = false
  EXPECT_EQ(tokenizer_->token_id("<|im_start|>"), 1);
  EXPECT_TRUE(tokenizer_->is_special(2));
  EXPECT_FALSE(tokenizer_->is_special(100));
}

TEST_F(SmolLM2Tokenizer, RoundTripsArbitraryText) {
  const std::string text = "Round trip: 你好 😀 e\u0301 \t\n\n  x² ٣ <|im_end|> end  ";
  const auto ids = tokenizer_->encode(text, {.parse_special = true});
  EXPECT_EQ(tokenizer_->decode(ids), text);
  EXPECT_EQ(test::stream_decode(*tokenizer_, ids), text);
}

TEST_F(SmolLM2Tokenizer, StreamingHoldsBackSplitCharacters) {
  // "😀" is several byte-level tokens; no part of it may be emitted alone.
  const auto ids = tokenizer_->encode("a😀b");
  StreamingDecoder decoder(*tokenizer_);
  std::vector<std::string> pieces;
  for (const TokenId id : ids) pieces.push_back(decoder.push(id));
  pieces.push_back(decoder.finish());
  std::string joined;
  for (const std::string& piece : pieces) {
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << test::printable(piece);
    joined += piece;
  }
  EXPECT_EQ(joined, "a😀b");
}

}  // namespace
}  // namespace kvsafe::engine
