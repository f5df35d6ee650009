// Malformed tokenizer inputs must fail at load with an InputError naming the file and the
// key (never a crash or a silently wrong tokenizer). Table-driven: each row breaks one
// thing in an otherwise valid tokenizer.json or GGUF vocabulary.

#include <functional>

#include "tests/engine/tokenizer_test_util.h"
#include "text/tokenizer_gguf.h"
#include "text/tokenizer_json.h"

namespace kvsafe::engine {
namespace {

// Loads and builds; returns the error message ("" when nothing was thrown).
template <typename Load>
std::string load_error(Load&& load) {
  try {
    Tokenizer::create(load());
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

struct JsonCase {
  const char* name = "";
  std::string json;
  std::vector<std::string> expected_in_message;
};

// A valid byte-level tokenizer: tokens a, b, ab and the merge "a b".
nlohmann::json valid_json() {
  return nlohmann::json::parse(R"({
    "version": "1.0",
    "added_tokens": [{"id": 3, "content": "<|x|>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
  })");
}

std::vector<JsonCase> json_cases() {
  std::vector<JsonCase> cases;
  const auto with = [](auto&& edit) {
    nlohmann::json j = valid_json();
    edit(j);
    return j.dump();
  };
  cases.push_back({"not_json", "{\"model\": ", {"bad.json", "not valid JSON"}});
  cases.push_back(
      {"missing_merges", with([](auto& j) { j["model"].erase("merges"); }), {"bad.json", "model", "merges"}});
  cases.push_back({"missing_model", with([](auto& j) { j.erase("model"); }), {"bad.json", "model"}});
  cases.push_back({"vocab_id_out_of_range",
                   with([](auto& j) { j["model"]["vocab"]["ab"] = 7; }),
                   {"bad.json", "model.vocab.ab", "out of range"}});
  cases.push_back({"vocab_id_negative",
                   with([](auto& j) { j["model"]["vocab"]["ab"] = -1; }),
                   {"bad.json", "model.vocab.ab", "out of range"}});
  cases.push_back({"vocab_id_twice", with([](auto& j) { j["model"]["vocab"]["ab"] = 1; }), {"bad.json", "used twice"}});
  cases.push_back({"added_id_out_of_range",
                   with([](auto& j) { j["added_tokens"][0]["id"] = 1LL << 40; }),
                   {"bad.json", "added_tokens[0].id", "out of range"}});
  cases.push_back({"added_id_leaves_hole",
                   with([](auto& j) { j["added_tokens"][0]["id"] = 9; }),
                   {"bad.json", "no token has id 3"}});
  cases.push_back({"merge_of_unknown_token",
                   with([](auto& j) { j["model"]["merges"].push_back("a c"); }),
                   {"bad.json", "merges[1]", "'c'"}});
  cases.push_back(
      {"merge_without_space", with([](auto& j) { j["model"]["merges"][0] = "ab"; }), {"bad.json", "model.merges[0]"}});
  cases.push_back({"unsupported_model",
                   with([](auto& j) { j["model"]["type"] = "Unigram"; }),
                   {"bad.json", "model.type", "Unigram", "supported: BPE"}});
  cases.push_back({"unsupported_pre_tokenizer",
                   with([](auto& j) {
                     j["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
                   }),
                   {"bad.json", "pre_tokenizer", "BertPreTokenizer", "ByteLevel"}});
  cases.push_back({"unsupported_normalizer",
                   with([](auto& j) {
                     j["normalizer"] = {{"type", "BertNormalizer"}};
                   }),
                   {"bad.json", "normalizer", "BertNormalizer", "NFC"}});
  cases.push_back({"unsupported_decoder",
                   with([](auto& j) {
                     j["decoder"] = {{"type", "WordPiece"}};
                   }),
                   {"bad.json", "decoder", "WordPiece"}});
  cases.push_back(
      {"bad_regex",
       with([](auto& j) {
         j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
       }),
       {"bad.json", "regex", "(unclosed"}});
  cases.push_back({"bad_behavior",
                   with([](auto& j) {
                     j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
                   }),
                   {"bad.json", "behavior", "Sideways"}});
  cases.push_back({"dropout", with([](auto& j) { j["model"]["dropout"] = 0.1; }), {"bad.json", "dropout"}});
  cases.push_back({"unk_not_in_vocab",
                   with([](auto& j) { j["model"]["unk_token"] = "<unk>"; }),
                   {"bad.json", "unk_token", "<unk>"}});
  // Bad UTF-8 inside a vocabulary string (raw bytes, not an escape).
  std::string bad_utf8 = valid_json().dump();
  bad_utf8.replace(bad_utf8.find("\"ab\""), 4, "\"a\xC3\"");
  cases.push_back({"bad_utf8_in_vocab", bad_utf8, {"bad.json", "UTF-8"}});
  return cases;
}

TEST(TokenizerErrors, ValidJsonLoads) {
  const auto tokenizer = Tokenizer::create(parse_tokenizer_json(valid_json().dump(), "ok.json"));
  EXPECT_EQ(tokenizer->encode("abab"), (std::vector<TokenId>{2, 2}));
}

TEST(TokenizerErrors, MalformedTokenizerJson) {
  for (const JsonCase& c : json_cases()) {
    SCOPED_TRACE(c.name);
    const std::string message = load_error([&] { return parse_tokenizer_json(c.json, "bad.json"); });
    ASSERT_FALSE(message.empty()) << "no error for " << c.name;
    for (const std::string& part : c.expected_in_message) {
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    }
  }
}

TEST(TokenizerErrors, MissingFileNamesIt) {
  EXPECT_THROW(Tokenizer::load("/nonexistent/tokenizer.json"), InputError);
  try {
    load_tokenizer_json("/nonexistent/tokenizer.json");
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/tokenizer.json"), std::string::npos);
  }
}

struct GgufCase {
  const char* name = "";
  std::function<void(GgufTokenizerMetadata&)> edit;
  std::vector<std::string> expected_in_message;
};

GgufTokenizerMetadata valid_gguf_gpt2() {
  GgufTokenizerMetadata m;
  m.source = "bad.gguf";
  m.model = "gpt2";
  m.pre = "smollm";
  m.tokens = {"<|endoftext|>", "a", "b", "ab"};
  m.token_types = {3, 1, 1, 1};
  m.merges = {"a b"};
  m.bos_id = 0;
  m.eos_id = 0;
  return m;
}

GgufTokenizerMetadata valid_gguf_llama() {
  GgufTokenizerMetadata m;
  m.source = "bad.gguf";
  m.model = "llama";
  m.tokens = {"<unk>", "<s>", "</s>", "\u2581", "a", "\u2581a"};
  m.scores = {0, 0, 0, -1, -2, -3};
  m.token_types = {2, 3, 3, 1, 1, 1};
  m.unk_id = 0;
  m.bos_id = 1;
  m.eos_id = 2;
  return m;
}

TEST(TokenizerErrors, ValidGgufMetadataLoads) {
  EXPECT_EQ(Tokenizer::create(tokenizer_data_from_gguf(valid_gguf_gpt2()))->encode("ab"), std::vector<TokenId>{3});
  EXPECT_EQ(Tokenizer::create(tokenizer_data_from_gguf(valid_gguf_llama()))->encode("a"), (std::vector<TokenId>{1, 5}));
}

TEST(TokenizerErrors, MalformedGgufVocabulary) {
  const std::vector<GgufCase> gpt2_cases = {
      {"missing_merges", [](auto& m) { m.merges.clear(); }, {"bad.gguf", "tokenizer.ggml.merges"}},
      {"missing_tokens", [](auto& m) { m.tokens.clear(); }, {"bad.gguf", "tokenizer.ggml.tokens"}},
      {"missing_model", [](auto& m) { m.model.clear(); }, {"bad.gguf", "tokenizer.ggml.model"}},
      {"unknown_model", [](auto& m) { m.model = "bert"; }, {"bad.gguf", "tokenizer.ggml.model", "bert", "gpt2"}},
      {"unknown_pre", [](auto& m) { m.pre = "mystery"; }, {"bad.gguf", "tokenizer.ggml.pre", "mystery", "smollm"}},
      {"bos_out_of_range", [](auto& m) { m.bos_id = 4; }, {"bad.gguf", "tokenizer.ggml.bos_token_id", "4"}},
      {"eos_out_of_range", [](auto& m) { m.eos_id = 1000; }, {"bad.gguf", "tokenizer.ggml.eos_token_id"}},
      {"pad_out_of_range", [](auto& m) { m.pad_id = 7; }, {"bad.gguf", "tokenizer.ggml.padding_token_id", "7"}},
      {"bad_utf8", [](auto& m) { m.tokens[2] = "b\xFF"; }, {"bad.gguf", "tokenizer.ggml.tokens[2]", "UTF-8"}},
      {"merge_unknown", [](auto& m) { m.merges.push_back("a c"); }, {"bad.gguf", "merges[1]", "'c'"}},
      {"merge_malformed", [](auto& m) { m.merges[0] = "ab"; }, {"bad.gguf", "tokenizer.ggml.merges[0]"}},
      {"token_types_short", [](auto& m) { m.token_types.pop_back(); }, {"bad.gguf", "tokenizer.ggml.token_type"}},
      {"token_type_invalid", [](auto& m) { m.token_types[1] = 42; }, {"bad.gguf", "tokenizer.ggml.token_type[1]"}},
      {"add_bos_without_bos",
       [](auto& m) {
         m.bos_id.reset();
         m.add_bos = true;
       },
       {"bad.gguf", "bos_token_id"}},
  };
  for (const GgufCase& c : gpt2_cases) {
    SCOPED_TRACE(c.name);
    const std::string message = load_error([&] {
      GgufTokenizerMetadata m = valid_gguf_gpt2();
      c.edit(m);
      return tokenizer_data_from_gguf(m);
    });
    ASSERT_FALSE(message.empty()) << "no error for " << c.name;
    for (const std::string& part : c.expected_in_message) {
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    }
  }
  const std::vector<GgufCase> llama_cases = {
      {"missing_scores", [](auto& m) { m.scores.clear(); }, {"bad.gguf", "tokenizer.ggml.scores"}},
      {"unk_out_of_range", [](auto& m) { m.unk_id = 6; }, {"bad.gguf", "tokenizer.ggml.unknown_token_id"}},
  };
  for (const GgufCase& c : llama_cases) {
    SCOPED_TRACE(c.name);
    const std::string message = load_error([&] {
      GgufTokenizerMetadata m = valid_gguf_llama();
      c.edit(m);
      return tokenizer_data_from_gguf(m);
    });
    ASSERT_FALSE(message.empty()) << "no error for " << c.name;
    for (const std::string& part : c.expected_in_message) {
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    }
  }
}

TEST(TokenizerErrors, UnsetTokenIdsAreAbsent) {
  GgufTokenizerMetadata m = valid_gguf_gpt2();
  m.eos_id = 0xFFFFFFFFLL;  // llama.cpp's "unset"
  m.pad_id = -1;
  const auto tokenizer = Tokenizer::create(tokenizer_data_from_gguf(m));
  EXPECT_EQ(tokenizer->eos_id(), std::nullopt);
  EXPECT_EQ(tokenizer->pad_id(), std::nullopt);
}

}  // namespace
}  // namespace kvsafe::engine
