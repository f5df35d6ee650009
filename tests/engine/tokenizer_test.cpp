// The tokenizer core: stories260K (SentencePiece BPE from GGUF) against the golden ids
// of ../shared/models/stories260K (computed by its reference_forward.py), the UTF-8
// helpers, and streaming decode.

#include <algorithm>

#include "tests/engine/tokenizer_test_util.h"
#include "text/tokenizer_gguf.h"
#include "text/unicode_utf8.h"

namespace kvsafe::engine {
namespace {

std::unique_ptr<Tokenizer> stories() {
  return Tokenizer::load(test::stories260k_dir() / "stories260K.gguf");
}

TEST(Stories260KTokenizer, GoldenPromptIds) {
  const auto tokenizer = stories();
  const nlohmann::json golden = test::read_json(test::stories260k_dir() / "golden_stories260K.json");
  ASSERT_FALSE(golden.at("cases").empty());
  for (const auto& c : golden.at("cases")) {
    const std::string prompt = c.at("prompt").get<std::string>();
    SCOPED_TRACE(prompt);
    // reference_forward.py prepends BOS, as llama.cpp does for SentencePiece models.
    EXPECT_EQ(tokenizer->encode(prompt), c.at("prompt_ids").get<std::vector<TokenId>>());
    EXPECT_EQ(tokenizer->decode(c.at("prompt_ids").get<std::vector<TokenId>>(), {.skip_special = true}), prompt);
  }
}

TEST(Stories260KTokenizer, Configuration) {
  const auto tokenizer = stories();
  EXPECT_EQ(tokenizer->vocab_size(), 512u);
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_TRUE(tokenizer->adds_bos());
  EXPECT_TRUE(tokenizer->is_special(1));
  EXPECT_EQ(tokenizer->token_text(13), "<0x0A>");
}

TEST(Stories260KTokenizer, ByteFallbackRoundTripsAndStreams) {
  const auto tokenizer = stories();
  // The 512-piece vocabulary has no CJK or emoji: they become <0xXX> byte tokens.
  const std::string text = "Lily saw 你好 and 😀.\nThe end.";
  const auto ids = tokenizer->encode(text, {.add_bos = false});
  EXPECT_GT(std::count_if(ids.begin(), ids.end(), [&](TokenId id) { return tokenizer->token_text(id).size() == 6; }),
            6);
  EXPECT_EQ(tokenizer->decode(ids), text);
  EXPECT_EQ(test::stream_decode(*tokenizer, ids), text);
  StreamingDecoder decoder(*tokenizer);
  for (const TokenId id : ids) EXPECT_EQ(decoder.push(id).find("\xEF\xBF\xBD"), std::string::npos);
}

TEST(Stories260KTokenizer, SpecialTokensBothWays) {
  const auto tokenizer = stories();
  const auto parsed = tokenizer->encode("Hi</s>", {.add_bos = false, .parse_special = true});
  ASSERT_FALSE(parsed.empty());
  EXPECT_EQ(parsed.back(), 2);
  const auto plain = tokenizer->encode("Hi</s>", {.add_bos = false});
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(tokenizer->decode(parsed), "Hi</s>");
  EXPECT_EQ(tokenizer->decode(parsed, {.skip_special = true}), "Hi");
}

TEST(Stories260KTokenizer, RejectsBadIdsAndBadUtf8) {
  const auto tokenizer = stories();
  const std::vector<TokenId> bad{1, 512};
  EXPECT_THROW(tokenizer->decode(bad), InputError);
  EXPECT_THROW(tokenizer->encode("abc\xFF"), InputError);
  StreamingDecoder decoder(*tokenizer);
  EXPECT_THROW(decoder.push(-1), InputError);
}

TEST(Utf8, FindsInvalidSequences) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::nullopt);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xF0\x9F\x98\x80"), std::nullopt);
  EXPECT_EQ(find_invalid_utf8("ab\xC3"), 2u);            // truncated
  EXPECT_EQ(find_invalid_utf8("\xC0\xAF"), 0u);          // overlong
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);     // surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
}

TEST(Utf8, LossyRepairAndIncompleteSuffix) {
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");  // one U+FFFD for the maximal invalid part
  EXPECT_EQ(utf8_lossy("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(incomplete_utf8_suffix("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_suffix("a\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(incomplete_utf8_suffix("a\xFF"), 0u);
}

TEST(Utf8, ByteLevelAlphabetIsABijection) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::string encoded = byte_level_encode(all);
  EXPECT_EQ(byte_level_decode(encoded), all);
  EXPECT_EQ(byte_level_encode(" "), "\u0120");   // GPT-2's "Ġ"
  EXPECT_EQ(byte_level_encode("\n"), "\u010A");  // "Ċ"
  EXPECT_EQ(byte_level_decode("\u2581"), std::nullopt);
}

TEST(GgufTokenizer, UnknownPreTokenizerListsSupportedOnes) {
  GgufTokenizerMetadata m;
  m.source = "x.gguf";
  m.model = "gpt2";
  m.pre = "no-such-pre";
  m.tokens = {"a", "b", "ab"};
  m.merges = {"a b"};
  try {
    tokenizer_data_from_gguf(m);
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("x.gguf"), std::string::npos) << message;
    EXPECT_NE(message.find("tokenizer.ggml.pre"), std::string::npos) << message;
    EXPECT_NE(message.find("no-such-pre"), std::string::npos) << message;
    for (const char* name : {"smollm", "llama-bpe", "qwen2", "gpt2", "olmo", "deepseek-llm"}) {
      EXPECT_NE(message.find(name), std::string::npos) << name << " missing from: " << message;
    }
  }
}

TEST(GgufTokenizer, EveryKnownPreTokenizerCompiles) {
  for (const std::string& pre : supported_gguf_pre_tokenizers()) {
    SCOPED_TRACE(pre);
    GgufTokenizerMetadata m;
    m.source = "x.gguf";
    m.model = "gpt2";
    m.pre = pre;
    for (int b = 0; b < 256; ++b) m.tokens.push_back(byte_level_encode(std::string(1, static_cast<char>(b))));
    m.tokens.push_back("ab");
    m.merges = {"a b"};
    m.bos_id = 0;
    const auto tokenizer = Tokenizer::create(tokenizer_data_from_gguf(m));
    const std::string text = "ab 12345 Hello, world!\n\n  你好 😀";
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, {.add_bos = false})), text);
  }
}

}  // namespace
}  // namespace kvsafe::engine
