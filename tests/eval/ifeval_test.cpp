// IFEval checkers (eval/ifeval_instructions.h) against the reference checkers: every strict
// and loose verdict of tests/eval/fixtures/ifeval_oracle_verdicts.json (written by
// tests/oracles/ifeval_oracle.py from the responses in ifeval_responses.json) must match, the
// language rows included (langdetect there, CLD2 here).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "eval/ifeval_instructions.h"
#include "eval/ifeval_text.h"

namespace kvsafe::eval::ifeval {
namespace {

std::filesystem::path fixtures() {
  return std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests/eval/fixtures";
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

TEST(Ifeval, RegistryHasTheReferenceIds) {
  const auto ids = instruction_ids();
  ASSERT_EQ(ids.size(), 25u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  for (const auto id : {"keywords:existence", "length_constraints:number_words", "detectable_format:json_format",
                        "change_case:english_lowercase", "startend:end_checker", "punctuation:no_comma",
                        "combination:repeat_prompt", "language:response_language"}) {
    EXPECT_NE(std::find(ids.begin(), ids.end(), std::string_view(id)), ids.end()) << id;
  }
}

TEST(Ifeval, VerdictsMatchTheReferenceOracle) {
  const nlohmann::json inputs = read_json(fixtures() / "ifeval_responses.json");
  const nlohmann::json oracle = read_json(fixtures() / "ifeval_oracle_verdicts.json");
  ASSERT_EQ(inputs["examples"].size(), oracle["examples"].size());
  std::map<std::string, std::pair<int, int>> per_type;  // id -> (verdicts, agreeing)
  for (std::size_t i = 0; i < inputs["examples"].size(); ++i) {
    const auto& example = inputs["examples"][i];
    const auto& expected = oracle["examples"][i];
    const std::string name = example["name"].get<std::string>();
    ASSERT_EQ(name, expected["name"].get<std::string>());
    const auto instructions = instructions_from_input(example);
    const PromptVerdict got = evaluate_prompt(instructions, example["response"].get<std::string>());
    for (std::size_t k = 0; k < instructions.size(); ++k) {
      for (const bool loose : {false, true}) {
        const bool want = expected[loose ? "loose" : "strict"][k].get<bool>();
        const bool have = loose ? got.loose[k] : got.strict[k];
        auto& [total, agree] = per_type[instructions[k].id];
        ++total;
        if (have == want) {
          ++agree;
          continue;
        }
        ADD_FAILURE() << name << " " << instructions[k].id << (loose ? " loose" : " strict") << ": oracle " << want
                      << ", kvsafe " << have;
      }
    }
  }
  int total = 0;
  int agree = 0;
  for (const auto& [id, counts] : per_type) {
    std::printf("%-48s %3d verdicts, %3d agree\n", id.c_str(), counts.first, counts.second);
    total += counts.first;
    agree += counts.second;
  }
  std::printf("all: %d verdicts (strict + loose), %d agree\n", total, agree);
  EXPECT_EQ(per_type.size(), 25u) << "every instruction type has oracle cases";
  EXPECT_EQ(agree, total);
}

// CLD2's languages in langdetect's codes, and nothing for text without a language.
TEST(Ifeval, DetectedLanguageSpeaksLangdetectsCodes) {
  EXPECT_EQ(detected_language("The quick brown fox jumps over the lazy dog near the river bank today."), "en");
  EXPECT_EQ(detected_language("Der schnelle braune Fuchs springt heute über den faulen Hund am Flussufer."), "de");
  EXPECT_EQ(detected_language("השועל החום המהיר קופץ מעל הכלב העצלן ליד גדת הנהר היום בבוקר."), "he");  // CLD2: iw
  EXPECT_EQ(detected_language("我们今天在学校学习了中国的历史和文化。老师告诉我们很多有意思的故事，"
                              "同学们都听得非常认真。下课以后，我和朋友一起去图书馆看书。"),
            "zh-cn");  // CLD2: zh
  EXPECT_EQ(detected_language(""), std::nullopt);
  EXPECT_EQ(detected_language("12345 67 89"), std::nullopt);
}

TEST(Ifeval, SplittingCountsMatchTheReferenceOracle) {
  const nlohmann::json inputs = read_json(fixtures() / "ifeval_responses.json");
  const nlohmann::json oracle = read_json(fixtures() / "ifeval_oracle_verdicts.json");
  ASSERT_EQ(inputs["examples"].size(), oracle["examples"].size());
  for (std::size_t i = 0; i < inputs["examples"].size(); ++i) {
    const std::u32string response = ifeval_text::decode_utf8(inputs["examples"][i]["response"].get<std::string>());
    const auto& expected = oracle["examples"][i];
    const std::string name = expected["name"].get<std::string>();
    EXPECT_EQ(ifeval_text::count_words(response), expected["count_words"].get<std::int64_t>()) << name;
    EXPECT_EQ(ifeval_text::count_sentences(response), expected["count_sentences"].get<std::int64_t>()) << name;
    EXPECT_EQ(ifeval_text::count_capital_words(response), expected["count_capital_words"].get<std::int64_t>()) << name;
  }
}

TEST(Ifeval, AccuracyAggregatesAsTheReference) {
  // Hand-computed: prompt A follows 2/2 strict, 2/2 loose; B 1/3 strict, 2/3 loose;
  // C 0/1 strict, 1/1 loose. Strict: prompts 1/3, instructions 3/6; loose: prompts 2/3, 5/6.
  const std::vector<PromptVerdict> verdicts{
      {.strict = {true, true}, .loose = {true, true}},
      {.strict = {true, false, false}, .loose = {true, true, false}},
      {.strict = {false}, .loose = {true}},
  };
  const Accuracy acc = accuracy(verdicts);
  EXPECT_DOUBLE_EQ(acc.prompt_level_strict, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(acc.inst_level_strict, 3.0 / 6.0);
  EXPECT_DOUBLE_EQ(acc.prompt_level_loose, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(acc.inst_level_loose, 5.0 / 6.0);
  const Accuracy none = accuracy({});
  EXPECT_EQ(none.prompt_level_strict, 0.0);
  EXPECT_EQ(none.inst_level_loose, 0.0);

  // The same aggregation over the oracle's own verdicts gives the oracle's accuracies.
  const nlohmann::json oracle = read_json(fixtures() / "ifeval_oracle_verdicts.json");
  std::vector<PromptVerdict> from_oracle;
  for (const auto& example : oracle["examples"]) {
    from_oracle.push_back(
        {.strict = example["strict"].get<std::vector<bool>>(), .loose = example["loose"].get<std::vector<bool>>()});
  }
  const Accuracy ref = accuracy(from_oracle);
  EXPECT_DOUBLE_EQ(ref.prompt_level_strict, oracle["accuracy"]["prompt_level_strict_accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(ref.inst_level_strict, oracle["accuracy"]["inst_level_strict_accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(ref.prompt_level_loose, oracle["accuracy"]["prompt_level_loose_accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(ref.inst_level_loose, oracle["accuracy"]["inst_level_loose_accuracy"].get<double>());
}

TEST(Ifeval, UnknownIdAndBadKwargsAreInputErrors) {
  try {
    (void)follows(Instruction{.id = "keywords:key_sentences"}, "text");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("keywords:key_sentences"), std::string::npos) << e.what();
  }
  try {
    (void)follows(Instruction{.id = "length_constraints:number_words", .kwargs = {{"relation", "at least"}}}, "x");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("num_words"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)follows(Instruction{.id = "keywords:frequency",
                                         .kwargs = {{"keyword", "a.b"}, {"frequency", 1}, {"relation", "at least"}}},
                             "x"),
               InputError);
  EXPECT_THROW((void)follows(Instruction{.id = "language:response_language", .kwargs = {{"language", "xx"}}}, "x"),
               InputError);
  EXPECT_THROW((void)instructions_from_input(nlohmann::json{{"key", 7}, {"instruction_id_list", {"a"}}}), InputError);
}

// A run scores every instruction it can: an unscorable one (the reference would draw a random
// letter) costs only itself, with the reason kept, and leaves its neighbours' verdicts as
// follows_strict / follows_loose give them.
TEST(Ifeval, ScoreInstructionsKeepsTheUnscorableApart) {
  const std::vector<Instruction> instructions = {
      {.id = "punctuation:no_comma"},
      {.id = "keywords:letter_frequency",
       .kwargs = {{"letter", "#"}, {"let_frequency", 2}, {"let_relation", "less than"}}},
      {.id = "change_case:english_lowercase"},
  };
  const std::string response = "*Hello* there\nno commas here";
  const std::vector<ScoredInstruction> scored = score_instructions(instructions, response);
  ASSERT_EQ(scored.size(), 3u);
  EXPECT_EQ(scored[0].id, "punctuation:no_comma");
  EXPECT_EQ(scored[0].strict, true);
  EXPECT_EQ(scored[0].loose, true);
  EXPECT_TRUE(scored[0].unscored.empty());
  EXPECT_FALSE(scored[1].strict.has_value());
  EXPECT_FALSE(scored[1].loose.has_value());
  EXPECT_NE(scored[1].unscored.find("letter"), std::string::npos) << scored[1].unscored;
  // "Hello" is capitalised: not all lowercase; loosely, the answer without its first line is.
  EXPECT_EQ(scored[2].strict, false);
  EXPECT_EQ(scored[2].loose, true);
  const std::vector<ScoredInstruction> lower = score_instructions(instructions, "hello\nall lowercase");
  EXPECT_EQ(lower[2].strict, true);
}

TEST(Ifeval, EveryInputDataInstructionIsAccepted) {
  const auto path = std::filesystem::path(KVSAFE_SOURCE_DIR) / "../shared/datasets/ifeval/input_data.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  std::ifstream in(path);
  std::string line;
  int prompts = 0;
  int instructions = 0;
  std::vector<std::string> refused;
  while (std::getline(in, line)) {
    const auto example = nlohmann::json::parse(line);
    for (const Instruction& instruction : instructions_from_input(example)) {
      ++instructions;
      try {
        (void)follows_loose(instruction, "Some response.\nSECOND line, *with* [x].");
      } catch (const InputError& e) {
        refused.push_back(example["key"].dump() + " " + e.what());
      }
    }
    ++prompts;
  }
  EXPECT_EQ(prompts, 541);
  // Keys 1122 and 1129 ask for the letter '#' and '!': the reference draws a random letter
  // instead, so no verdict is reproducible and kvsafe refuses them.
  ASSERT_EQ(refused.size(), 2u) << ::testing::PrintToString(refused);
  EXPECT_TRUE(refused[0].starts_with("1122 ") && refused[0].find("'letter'") != std::string::npos) << refused[0];
  EXPECT_TRUE(refused[1].starts_with("1129 ") && refused[1].find("'letter'") != std::string::npos) << refused[1];
  std::printf("%d prompts, %d instructions, %zu refused\n", prompts, instructions, refused.size());
}

}  // namespace
}  // namespace kvsafe::eval::ifeval
