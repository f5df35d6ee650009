#pragma once
// Helpers shared by the tokenizer tests: fixture paths, JSON reading, and the comparison
// of one oracle case (ids both ways, decode, streaming decode) with kvsafe's tokenizer.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "text/tokenizer.h"

namespace kvsafe::engine::test {

inline std::filesystem::path source_dir() {
  return KVSAFE_SOURCE_DIR;
}
inline std::filesystem::path fixture(const std::string& name) {
  return source_dir() / "tests" / "engine" / "fixtures" / name;
}
inline std::filesystem::path stories260k_dir() {
  return source_dir() / ".." / "shared" / "models" / "stories260K";
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("cannot open " + path.string());
  return nlohmann::json::parse(in);
}

// Shows strings with control characters escaped, so failures are readable.
inline std::string printable(const std::string& text) {
  return nlohmann::json(text).dump();
}

// Concatenation of a streaming decode, token by token.
inline std::string stream_decode(const Tokenizer& tokenizer, const std::vector<TokenId>& ids,
                                 DecodeOptions options = {}) {
  StreamingDecoder decoder(tokenizer, options);
  std::string text;
  for (const TokenId id : ids) text += decoder.push(id);
  return text + decoder.finish();
}

// Compares one case of an oracle file (tests/oracles/tokenizer_smollm2_oracle.py).
inline void expect_oracle_case(const Tokenizer& tokenizer, const nlohmann::json& c) {
  const std::string text = c.at("text").get<std::string>();
  SCOPED_TRACE("text " + printable(text));
  const auto expected = c.at("ids").get<std::vector<TokenId>>();
  const auto expected_special = c.at("ids_parse_special").get<std::vector<TokenId>>();
  const auto expected_added = c.at("ids_add_special").get<std::vector<TokenId>>();
  EXPECT_EQ(tokenizer.encode(text, {.add_bos = false, .add_eos = false, .parse_special = false}), expected);
  EXPECT_EQ(tokenizer.encode(text, {.add_bos = false, .add_eos = false, .parse_special = true}), expected_special);
  EXPECT_EQ(tokenizer.encode(text, {.parse_special = false}), expected_added) << "with the model's BOS/EOS";
  const std::string decoded = c.at("decoded").get<std::string>();
  EXPECT_EQ(printable(tokenizer.decode(expected_special)), printable(decoded));
  EXPECT_EQ(printable(tokenizer.decode(expected_special, {.skip_special = true})),
            printable(c.at("decoded_skip_special").get<std::string>()));
  EXPECT_EQ(printable(stream_decode(tokenizer, expected_special)), printable(decoded)) << "streaming decode";
}

}  // namespace kvsafe::engine::test
