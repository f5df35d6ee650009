// python_strip against Python's own str.strip() (tests/oracles/python_strip_oracle.py wrote the
// golden cases), and clean_up_tokenization against transformers' documented replacements.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "text/python_text.h"

namespace kvsafe::text {
namespace {

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

TEST(PythonText, StripMatchesPythonOnEveryGoldenCase) {
  std::ifstream in(std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests" / "text" / "fixtures" /
                   "python_strip_golden.json");
  ASSERT_TRUE(in) << "tests/text/fixtures/python_strip_golden.json missing";
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json golden = nlohmann::json::parse(text.str());
  ASSERT_EQ(golden.at("spaces").size(), 29U);  // Python's whitespace set, all of it covered below
  for (const auto& c : golden.at("cases")) {
    EXPECT_EQ(python_strip(from_hex(c.at("in").get<std::string>())), from_hex(c.at("out").get<std::string>()))
        << "input " << c.at("in");
  }
}

TEST(PythonText, CleanUpTokenizationSpaces) {
  // " 't" is not one of them: "can 't" stays.
  EXPECT_EQ(clean_up_tokenization("I can 't help . Why ? No ! Well , it 's done"),
            "I can 't help. Why? No! Well, it's done");
  EXPECT_EQ(clean_up_tokenization("I do n't know , you 're right , I 've seen it , I 'm sure"),
            "I don't know, you're right, I've seen it, I'm sure");
  // " ' " becomes "'" before " 's" is tried: the order is transformers'.
  EXPECT_EQ(clean_up_tokenization("rock ' n ' roll"), "rock'n'roll");
  EXPECT_EQ(clean_up_tokenization("no change here."), "no change here.");
  EXPECT_EQ(clean_up_tokenization(" ."), ".");
}

}  // namespace
}  // namespace kvsafe::text
