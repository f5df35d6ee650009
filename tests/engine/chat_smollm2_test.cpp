// SmolLM2-135M-Instruct (label model): its GGUF's own template is recognized, and the
// rendered prompts tokenize to the ids HF `tokenizers` gives (tests/engine/fixtures/
// chat_smollm2.json, tests/oracles/chat_template_oracle.py), with the same
// post-instruction positions. Skipped when the model is not in the cache.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "common/sha256.h"
#include "tests/engine/chat_test_util.h"
#include "tests/testing/model_files.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace kvsafe::engine {
namespace {

namespace fs = std::filesystem;

fs::path smollm2_path() {
  return kvsafe::testing::smollm2_gguf_path();
}

class ChatSmolLM2 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(smollm2_path())) GTEST_SKIP() << "model not cached: " << smollm2_path();
    golden_ = test::read_chat_json(test::chat_fixture("chat_smollm2.json"));
  }
  nlohmann::json golden_;
};

TEST_F(ChatSmolLM2, GgufTemplateIsRecognized) {
  const auto text = read_chat_template(smollm2_path());
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(sha256_hex(*text), golden_.at("provenance").at("template_sha256").get<std::string>());
  const ChatTemplate chat = load_chat_template(smollm2_path());
  EXPECT_EQ(chat.name(), "smollm2");
  EXPECT_EQ(chat.match(), ChatTemplateMatch::kHash);
  EXPECT_EQ(chat.template_sha256(), sha256_hex(*text));
  EXPECT_FALSE(chat.writes_bos());
}

TEST_F(ChatSmolLM2, IdsAndPostInstructionPositionsMatchTheOracle) {
  const auto tokenizer = Tokenizer::load(smollm2_path());
  const ChatTemplate chat = load_chat_template(smollm2_path());
  int checked = 0;
  for (const auto& c : golden_.at("cases")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const TokenizedChat prompt = chat.tokenize(*tokenizer, test::chat_messages(c), test::chat_options(c));
    EXPECT_EQ(prompt.rendered.text, c.at("text").get<std::string>());
    EXPECT_EQ(prompt.ids, c.at("ids").get<std::vector<TokenId>>());
    EXPECT_EQ(prompt.post_instruction, c.at("post_instruction").get<std::vector<std::size_t>>());
    EXPECT_FALSE(prompt.tokenizer_added_bos);  // SmolLM2: add_bos_token false, no BOS at all
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

}  // namespace
}  // namespace kvsafe::engine
