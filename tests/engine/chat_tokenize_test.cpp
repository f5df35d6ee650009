// Tokenizing a rendered chat with a SentencePiece tokenizer that adds BOS by itself
// (stories260K, Llama-2's tokenizer format): the Llama-2 template writes <s> per user
// turn, so the tokenizer must not add another.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "common/error.h"
#include "tests/engine/chat_test_util.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace kvsafe::engine {
namespace {

std::filesystem::path stories_gguf() {
  return test::chat_source_dir() / ".." / "shared" / "models" / "stories260K" / "stories260K.gguf";
}

const std::vector<ChatMessage> kTwoTurns{{.role = ChatRole::kUser, .content = "Tell me a story."},
                                         {.role = ChatRole::kAssistant, .content = "Once upon a time."},
                                         {.role = ChatRole::kUser, .content = "More!"}};

TEST(ChatTokenize, Llama2BosIsNotDoubled) {
  if (!std::filesystem::exists(stories_gguf())) GTEST_SKIP() << "no " << stories_gguf();
  const auto tokenizer = Tokenizer::load(stories_gguf());
  ASSERT_TRUE(tokenizer->bos_id().has_value());
  ASSERT_TRUE(tokenizer->adds_bos()) << "the test needs a tokenizer with add_bos";
  const TokenId bos = *tokenizer->bos_id();
  const TokenId eos = *tokenizer->eos_id();

  const ChatTemplate chat = ChatTemplate::by_name("llama-2");
  const TokenizedChat prompt = chat.tokenize(*tokenizer, kTwoTurns);
  EXPECT_EQ(prompt.rendered.text, "<s>[INST] Tell me a story. [/INST] Once upon a time. </s><s>[INST] More! [/INST]");
  EXPECT_FALSE(prompt.tokenizer_added_bos);
  ASSERT_GE(prompt.ids.size(), 2u);
  EXPECT_EQ(prompt.ids[0], bos);
  EXPECT_NE(prompt.ids[1], bos);
  // One BOS per user turn, the </s> after the answer parsed as EOS, not as text.
  EXPECT_EQ(std::count(prompt.ids.begin(), prompt.ids.end(), bos), 2);
  EXPECT_EQ(std::count(prompt.ids.begin(), prompt.ids.end(), eos), 1);
  // What rule 1 prevents: the same text with the tokenizer's own BOS.
  const auto doubled = tokenizer->encode(prompt.rendered.text, {.parse_special = true});
  ASSERT_GE(doubled.size(), 2u);
  EXPECT_EQ(doubled[0], bos);
  EXPECT_EQ(doubled[1], bos);
  EXPECT_EQ(std::vector<TokenId>(doubled.begin() + 1, doubled.end()), prompt.ids);

  // Post-instruction tokens: exactly the tokens of " [/INST]" after the last user text.
  const auto tail = tokenizer->encode(" [/INST]", {.add_bos = false, .parse_special = true});
  ASSERT_FALSE(prompt.post_instruction.empty());
  EXPECT_EQ(prompt.post_instruction.back(), prompt.ids.size() - 1);
  std::vector<TokenId> post;
  for (const std::size_t i : prompt.post_instruction) post.push_back(prompt.ids[i]);
  const std::string post_text = tokenizer->decode(post);
  EXPECT_NE(post_text.find("[/INST]"), std::string::npos) << post_text;
  EXPECT_EQ(post_text.find("More"), std::string::npos) << post_text;
  EXPECT_LE(post.size(), tail.size());
}

TEST(ChatTokenize, TemplateBosMustBeASpecialToken) {
  if (!std::filesystem::exists(stories_gguf())) GTEST_SKIP() << "no " << stories_gguf();
  const auto tokenizer = Tokenizer::load(stories_gguf());
  try {
    (void)ChatTemplate::by_name("gemma-2").tokenize(*tokenizer, kTwoTurns);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("writes bos_token \"<bos>\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvsafe::engine
