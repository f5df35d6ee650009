// tokenizer.json loading against HF `tokenizers` itself: three small tokenizer.json files
// written by tests/oracles/tokenizer_smollm2_oracle.py (Llama-2-style SentencePiece BPE,
// Mistral-v0.3-style Metaspace, Qwen2-style byte-level BPE with NFC) and the ids and
// texts tokenizers gave for them.

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "tests/engine/tokenizer_test_util.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::engine {
namespace {

class TokenizerJsonOracle : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerJsonOracle, MatchesHfTokenizers) {
  const nlohmann::json oracle = test::read_json(test::fixture("tokenizer_json_oracle.json"));
  const auto tokenizer = Tokenizer::load(test::fixture(GetParam()));
  const auto& cases = oracle.at("tokenizers").at(GetParam());
  ASSERT_GE(cases.size(), 100u);
  for (const auto& c : cases) test::expect_oracle_case(*tokenizer, c);
}

INSTANTIATE_TEST_SUITE_P(Files, TokenizerJsonOracle,
                         ::testing::Values("tokenizer_spm_legacy.json", "tokenizer_spm_metaspace.json",
                                           "tokenizer_bytelevel_nfc.json"),
                         [](const auto& param_info) {
                           // "tokenizer_spm_legacy.json" -> "spm_legacy"
                           return param_info.param.substr(10, param_info.param.size() - 15);
                         });

TEST(TokenizerJson, ReadsTemplateProcessingBos) {
  const auto tokenizer = Tokenizer::load(test::fixture("tokenizer_spm_legacy.json"));
  EXPECT_TRUE(tokenizer->adds_bos());
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_FALSE(tokenizer->adds_eos());
  const auto ids = tokenizer->encode("Once upon a time");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(tokenizer->encode("Once upon a time", {.add_bos = false}).size() + 1, ids.size());
}

TEST(TokenizerJson, TokenizerConfigNamesThePadToken) {
  // Qwen2.5-Instruct's arrangement: EOS <|im_end|>, pad <|endoftext|> (what the paper pads with).
  kvsafe::testing::TempDir dir;
  std::filesystem::copy_file(test::fixture("tokenizer_bytelevel_nfc.json"), dir.path() / "tokenizer.json");
  const auto bare = Tokenizer::load(dir.path());
  EXPECT_EQ(bare->pad_id(), std::nullopt);
  std::ofstream(dir.path() / "tokenizer_config.json")
      << nlohmann::json{{"eos_token", "<|im_end|>"}, {"pad_token", {{"content", "<|endoftext|>"}}}}.dump();
  const auto tokenizer = Tokenizer::load(dir.path());
  EXPECT_EQ(tokenizer->eos_id(), tokenizer->token_id("<|im_end|>"));
  EXPECT_EQ(tokenizer->pad_id(), tokenizer->token_id("<|endoftext|>"));
  EXPECT_NE(tokenizer->pad_id(), tokenizer->eos_id());
  std::ofstream(dir.path() / "tokenizer_config.json") << nlohmann::json{{"pad_token", "<|nowhere|>"}}.dump();
  try {
    (void)Tokenizer::load(dir.path());
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("pad_token \"<|nowhere|>\" is not a token"), std::string::npos) << e.what();
  }
}

TEST(TokenizerJson, SpecialTokensArePlainTextUnlessAsked) {
  const auto tokenizer = Tokenizer::load(test::fixture("tokenizer_bytelevel_nfc.json"));
  const auto im_end = tokenizer->token_id("<|im_end|>");
  ASSERT_TRUE(im_end);
  EXPECT_EQ(tokenizer->encode("<|im_end|>", {.parse_special = true}), std::vector<TokenId>{*im_end});
  const auto plain = tokenizer->encode("<|im_end|>");
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), *im_end), 0);
  EXPECT_EQ(tokenizer->decode(plain), "<|im_end|>");
}

}  // namespace
}  // namespace kvsafe::engine
