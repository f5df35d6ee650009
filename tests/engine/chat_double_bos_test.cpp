// `bos: paper` (issue 20 item 1) against llama.cpp's tokenizer: the paper renders a chat template
// to text and tokenizes that with the tokenizer's defaults, so a template that writes BOS gets a
// second one from a vocabulary that adds it. tests/oracles/double_bos_llamacpp.py recorded what
// llama-tokenize gives for the official templates' texts (tests/engine/fixtures/chat_*.json) on
// stories260K's vocabulary (Llama-2 SentencePiece) and on llama.cpp's vocabulary-only test files
// of the Llama-2, Llama-3 and DeepSeek families. kvsafe's paper rule must give those ids; its
// default must give them with the second BOS gone.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "tests/engine/chat_test_util.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace kvsafe::engine {
namespace {

// Where the oracle found each vocabulary: stories260K in ../shared, llama.cpp's test vocabularies
// in the llama-cpp-python source that bench/compare-llamacpp and the oracle unpack.
std::filesystem::path vocab_path(const std::string& vocab) {
  if (vocab == "stories260K") {
    return test::chat_source_dir() / ".." / "shared" / "models" / "stories260K" / "stories260K.gguf";
  }
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::filesystem::path cache = xdg != nullptr && *xdg != '\0' ? std::filesystem::path(xdg)
                                      : home != nullptr              ? std::filesystem::path(home) / ".cache"
                                                                     : std::filesystem::path("/nonexistent");
  return cache / "kvsafe" / "llamacpp" / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "models" / vocab;
}

class DoubleBos : public ::testing::TestWithParam<std::size_t> {};

TEST_P(DoubleBos, PaperRuleGivesTheTwoStepIdsAndTheDefaultOneBos) {
  const nlohmann::json all = test::read_chat_json(test::chat_fixture("double_bos_llamacpp.json"));
  ASSERT_LT(GetParam(), all.at("cases").size());
  const nlohmann::json& c = all.at("cases").at(GetParam());
  const std::filesystem::path vocab = vocab_path(c.at("vocab").get<std::string>());
  if (!std::filesystem::exists(vocab)) {
    GTEST_SKIP() << "no " << vocab << " (llama.cpp's test vocabulary: tests/oracles/double_bos_llamacpp.py or "
                 << "bench/compare-llamacpp fetch it)";
  }
  ASSERT_EQ(sha256_file_hex(vocab), c.at("vocab_sha256").get<std::string>()) << vocab << " is not the oracle's";
  const auto tokenizer = Tokenizer::load(vocab);
  const ChatTemplate chat = ChatTemplate::by_name(c.at("family").get<std::string>());
  const nlohmann::json& chat_case = c.at("case");
  ChatOptions paper = test::chat_options(chat_case);
  paper.bos = BosRule::kPaper;
  const TokenizedChat two_step = chat.tokenize(*tokenizer, test::chat_messages(chat_case), paper);
  ASSERT_EQ(two_step.rendered.text, chat_case.at("text").get<std::string>());
  const auto expected = c.at("two_step_ids").get<std::vector<TokenId>>();
  EXPECT_EQ(two_step.ids, expected) << c.at("family") << " on " << c.at("vocab");
  // The oracle's ids start with two BOS: the template's and the vocabulary's.
  ASSERT_GE(expected.size(), 2U);
  ASSERT_TRUE(tokenizer->bos_id().has_value());
  EXPECT_EQ(expected[0], *tokenizer->bos_id());
  EXPECT_EQ(expected[1], *tokenizer->bos_id());
  EXPECT_TRUE(two_step.tokenizer_added_bos);
  // kvsafe's default: the same without the vocabulary's BOS.
  const TokenizedChat once = chat.tokenize(*tokenizer, test::chat_messages(chat_case), test::chat_options(chat_case));
  EXPECT_EQ(once.ids, std::vector<TokenId>(expected.begin() + 1, expected.end()));
  EXPECT_FALSE(once.tokenizer_added_bos);
}

INSTANTIATE_TEST_SUITE_P(Families, DoubleBos, ::testing::Range<std::size_t>(0, 6));

}  // namespace
}  // namespace kvsafe::engine
