// The registry against the real benchmark files in ../shared/datasets (skipped where that
// folder is absent): counts, harmful/benign split, ids, hashes, sampling; and on small
// generated files: missing files and malformed rows.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>

#include "common/error.h"
#include "common/sha256.h"
#include "eval/benchmark_registry.h"
#include "eval_test_util.h"

namespace kvsafe::eval {
namespace {

using testing::have_shared_datasets;
using testing::shared_datasets;

Benchmark load_ok(std::string_view name, const LoadOptions& options = {}) {
  Benchmark benchmark;
  const Status status = load_benchmark(name, shared_datasets(), options, &benchmark);
  EXPECT_TRUE(status.is_ok()) << status.message();
  return benchmark;
}

class RealData : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_shared_datasets()) GTEST_SKIP() << "no " << shared_datasets();
  }
};

// The table (eval/benchmark_table.h) is what `kvsafe plan` sizes grids with before any data is
// on disk: every count, subset count and harmfulness it states must be what the loaders read.
TEST_F(RealData, TheTableStatesWhatTheLoadersRead) {
  for (const BenchmarkInfo& info : benchmark_table()) {
    if (info.format == BenchmarkFormat::kText || info.format == BenchmarkFormat::kConversations) continue;
    const Benchmark benchmark = load_ok(info.name);
    EXPECT_EQ(static_cast<std::int64_t>(benchmark.prompts.size()), info.prompt_count) << info.name;
    std::map<std::string, std::int64_t> per_subset;
    for (const Prompt& prompt : benchmark.prompts) ++per_subset[prompt.subset];
    for (const SubsetInfo& subset : info.subsets) {
      EXPECT_EQ(per_subset[std::string(subset.name)], subset.prompt_count) << info.name << " " << subset.name;
    }
    switch (info.harmfulness) {
      case Harmfulness::kHarmful:
        EXPECT_EQ(benchmark.benign_count(), 0) << info.name;
        break;
      case Harmfulness::kBenign:
        EXPECT_EQ(benchmark.harmful_count(), 0) << info.name;
        break;
      case Harmfulness::kMixed:
        EXPECT_GT(benchmark.harmful_count(), 0) << info.name;
        EXPECT_GT(benchmark.benign_count(), 0) << info.name;
        break;
      case Harmfulness::kNotApplicable:
        ADD_FAILURE() << info.name << " is a prompt set without harmfulness";
    }
    EXPECT_LE(info.default_draw, info.prompt_count) << info.name;
    std::set<std::string> ids;
    for (const Prompt& prompt : benchmark.prompts) {
      EXPECT_TRUE(ids.insert(prompt.prompt_id).second) << info.name << ": duplicate id " << prompt.prompt_id;
      EXPECT_FALSE(prompt.text.empty());
      EXPECT_EQ(prompt.text_sha256, sha256_hex(prompt.text));
    }
  }
}

// ifeval: one prompt per line of the pinned file, each carrying its line's instructions so a
// worker can score the answer; the ids name IFEval's keys.
TEST_F(RealData, IfevalPromptsCarryTheirInstructions) {
  const Benchmark ifeval = load_ok("ifeval");
  ASSERT_EQ(ifeval.prompts.size(), 541u);
  const Prompt& first = ifeval.prompts.front();
  EXPECT_EQ(first.prompt_id, "ifeval-1000");
  EXPECT_FALSE(first.harmful);
  EXPECT_EQ(first.source_file, "ifeval/input_data.jsonl");
  EXPECT_EQ(first.source_line, 1);
  const nlohmann::json instructions = nlohmann::json::parse(first.ifeval_instructions);
  EXPECT_EQ(instructions["instruction_id_list"][0], "punctuation:no_comma");
  EXPECT_EQ(instructions["kwargs"].size(), instructions["instruction_id_list"].size());
  EXPECT_EQ(first.category.substr(0, std::string("punctuation:no_comma,").size()), "punctuation:no_comma,");
  std::int64_t instruction_count = 0;
  for (const Prompt& prompt : ifeval.prompts) {
    instruction_count +=
        static_cast<std::int64_t>(nlohmann::json::parse(prompt.ifeval_instructions)["instruction_id_list"].size());
  }
  EXPECT_EQ(instruction_count, 834);  // IFEval's published instruction count
}

// A user's multi-turn file (tests/eval/fixtures/conversations_two_turn.jsonl, written for these
// tests): the last user turn is the prompt, the earlier turns ride along, the hash names the whole
// conversation, and ids, harmfulness and categories are the file's.
TEST(Conversations, TheLastUserTurnIsThePromptAndTheRestRideAlong) {
  const auto file = std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests/eval/fixtures/conversations_two_turn.jsonl";
  const Benchmark b = load_conversations(file, "two_turn.jsonl");
  ASSERT_EQ(b.prompts.size(), 3U);
  const Prompt& first = b.prompts[0];
  EXPECT_EQ(first.prompt_id, "two-turn-1");
  EXPECT_TRUE(first.harmful);
  EXPECT_EQ(first.category, "fiction-frame");
  EXPECT_EQ(first.text.substr(0, 12), "The villain ");
  ASSERT_EQ(first.prior_turns.size(), 2U);
  EXPECT_EQ(first.prior_turns[0].role, "user");
  EXPECT_EQ(first.prior_turns[1].role, "assistant");
  EXPECT_EQ(first.prior_turns[1].content, "Of course. What is the story about?");
  EXPECT_NE(first.text_sha256, sha256_hex(first.text));  // the whole conversation's
  EXPECT_EQ(first.source_line, 1);
  const Prompt& third = b.prompts[2];
  EXPECT_EQ(third.prompt_id, "conv-4");  // line 4 (line 3 is blank)
  EXPECT_FALSE(third.harmful);
  EXPECT_TRUE(third.prior_turns.empty());
  EXPECT_EQ(b.harmful_count(), 2);
  EXPECT_EQ(b.content_sha256.size(), 64U);
}

TEST(Conversations, MalformedLinesNameTheFileAndLine) {
  testing::TempDir dir("conversations");
  const auto refused = [&](const std::string& line, const std::string& expected) {
    const auto file = dir.path() / "c.jsonl";
    testing::write_file(file, R"({"messages": [{"role": "user", "content": "fine"}]})"
                              "\n" +
                                  line + "\n");
    try {
      (void)load_conversations(file, "c.jsonl");
      ADD_FAILURE() << "accepted: " << line;
    } catch (const InputError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("c.jsonl:2"), std::string::npos) << message;
      EXPECT_NE(message.find(expected), std::string::npos) << message;
    }
  };
  refused(R"({"messages": [)", "not valid JSON at byte");
  refused(R"({"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]})",
          "generation.system_prompt");
  refused(R"({"messages": [{"role": "user", "content": "x"}, {"role": "user", "content": "y"}]})",
          "expected \"assistant\"");
  refused(R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]})",
          "the last message must be the user's");
  refused(R"({"messages": [{"role": "user", "content": "x"}], "turns": 2})", "unknown key \"turns\"");
  refused(R"({"messages": [{"role": "user", "content": "x"}], "harmful": "yes"})", "must be true or false");
  refused(R"({"messages": []})", "non-empty array");
  EXPECT_THROW((void)load_conversations(dir.path() / "missing.jsonl", "missing.jsonl"), InputError);
  Benchmark b;
  EXPECT_EQ(load_benchmark("conversations", dir.path(), {}, &b).code(), Status::Code::kInvalidInput);
}

TEST(BenchmarkRegistry, MalformedIfevalLineNamesFileLineAndByte) {
  testing::TempDir dir("ifeval-bad");
  const std::string good =
      R"({"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]})";
  testing::write_file(dir.path() / "ifeval/input_data.jsonl", good + "\n{\"key\": 2, \"prompt\": }\n");
  Benchmark benchmark;
  try {
    (void)load_benchmark("ifeval", dir.path(), {}, &benchmark);
    ADD_FAILURE() << "a line of bad JSON was accepted";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("ifeval/input_data.jsonl:2"), std::string::npos) << message;
    EXPECT_NE(message.find("at byte"), std::string::npos) << message;
  }
  testing::write_file(dir.path() / "ifeval/input_data.jsonl",
                      R"({"key": 1, "prompt": "p", "instruction_id_list": ["a", "b"], "kwargs": [{}]})");
  try {
    (void)load_benchmark("ifeval", dir.path(), {}, &benchmark);
    ADD_FAILURE() << "lists of different lengths were accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ifeval/input_data.jsonl:1"), std::string::npos) << e.what();
  }
}

TEST_F(RealData, CustomIsRefusalThenPrivacyThenJailbreak) {
  const Benchmark custom = load_ok("custom");
  ASSERT_EQ(custom.prompts.size(), 63u);
  std::map<std::string, int> per_subset;
  for (const Prompt& prompt : custom.prompts) ++per_subset[prompt.subset];
  EXPECT_EQ(per_subset["refusal"], 19);
  EXPECT_EQ(per_subset["privacy"], 21);
  EXPECT_EQ(per_subset["jailbreak"], 23);
  EXPECT_EQ(custom.prompts.front().prompt_id, "refusal-001");
  EXPECT_EQ(custom.prompts[19].prompt_id, "privacy-001");
  EXPECT_EQ(custom.prompts[40].prompt_id, "jailbreak-001");
  EXPECT_EQ(custom.prompts.front().source_line, 3);  // after two comment lines
  for (const Prompt& prompt : custom.prompts) EXPECT_NE(prompt.text.front(), '#');
}

TEST_F(RealData, HarmfulAndBenign) {
  const Benchmark xstest = load_ok("xstest");
  EXPECT_EQ(xstest.harmful_count(), 200);
  EXPECT_EQ(xstest.benign_count(), 250);
  for (const Prompt& prompt : xstest.prompts) {
    EXPECT_EQ(prompt.harmful, prompt.category.starts_with("contrast_")) << prompt.prompt_id;
    EXPECT_EQ(prompt.subset, prompt.harmful ? "unsafe" : "safe");
  }
  const Benchmark harmbench = load_ok("harmbench");
  EXPECT_EQ(harmbench.prompts.size(), 159u);  // the standard rows of the 320-row test file
  for (const Prompt& prompt : harmbench.prompts) EXPECT_EQ(prompt.subset, "standard");
  EXPECT_EQ(load_ok("advbench").harmful_count(), 520);
  const Benchmark jbb = load_ok("jailbreakbench");
  EXPECT_EQ(jbb.prompts.front().prompt_id, "jbb-0");
  std::set<std::string> categories;
  for (const Prompt& prompt : jbb.prompts) categories.insert(prompt.category);
  EXPECT_EQ(categories.size(), 10u);
}

TEST_F(RealData, CalibrationSplits) {
  const Benchmark val = load_ok("calibration", {.split = "val"});
  EXPECT_EQ(val.harmful_count(), 39);
  EXPECT_EQ(val.benign_count(), 6264);
  const Benchmark test = load_ok("calibration", {.split = "test"});
  EXPECT_EQ(test.harmful_count(), 572);
  EXPECT_EQ(test.benign_count(), 6266);
  // Balanced sample: 128 of each class from the train split, as Arditi et al. draw them
  // (their draw uses Python's random; ours is the documented SplitMix64 draw).
  const Benchmark train = load_ok("calibration", {.sample = 128, .seed = 42, .balanced = true});
  EXPECT_EQ(train.harmful_count(), 128);
  EXPECT_EQ(train.benign_count(), 128);
}

TEST_F(RealData, SampleAndLimit) {
  const Benchmark all = load_ok("advbench");
  const Benchmark sampled = load_ok("advbench", {.sample = 50, .seed = 7});
  ASSERT_EQ(sampled.prompts.size(), 50u);
  EXPECT_EQ(sampled.content_sha256, load_ok("advbench", {.sample = 50, .seed = 7}).content_sha256);
  EXPECT_NE(sampled.content_sha256, load_ok("advbench", {.sample = 50, .seed = 8}).content_sha256);
  EXPECT_NE(sampled.content_sha256, all.content_sha256);
  // File order is kept: ids ascend.
  for (std::size_t i = 1; i < sampled.prompts.size(); ++i) {
    EXPECT_LT(sampled.prompts[i - 1].prompt_id, sampled.prompts[i].prompt_id);
  }
  const Benchmark limited = load_ok("advbench", {.limit = 10});
  ASSERT_EQ(limited.prompts.size(), 10u);
  EXPECT_EQ(limited.prompts[9].prompt_id, all.prompts[9].prompt_id);
  EXPECT_EQ(load_ok("advbench", {.sample = 50, .seed = 7, .limit = 5}).prompts[4].prompt_id,
            sampled.prompts[4].prompt_id);
}

TEST_F(RealData, WikitextIsACorpus) {
  Benchmark benchmark;
  EXPECT_EQ(load_benchmark("wikitext", shared_datasets(), {}, &benchmark).code(), Status::Code::kUnsupported);
  std::string raw;
  ASSERT_TRUE(read_corpus_text("wikitext", shared_datasets(), CorpusJoin::kRaw, &raw).is_ok());
  EXPECT_EQ(raw.size(), 1290590u);
  EXPECT_EQ(sha256_hex(raw), "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08");
  std::string joined;
  ASSERT_TRUE(read_corpus_text("wikitext", shared_datasets(), CorpusJoin::kRowsJoined, &joined).is_ok());
  // 4,358 rows joined by 4,357 "\n\n"; the first row (" \n") is blank, so the text starts
  // with the separator.
  EXPECT_TRUE(joined.starts_with("\n\n"));
}

TEST(BenchmarkRegistry, RowsJoinedOnAGeneratedCorpus) {
  testing::TempDir dir("corpus");
  testing::write_file(dir.path() / "wikitext-2/wiki.test.raw", " \n = Title = \n \n Text .\n");
  std::string joined;
  ASSERT_TRUE(read_corpus_text("wikitext", dir.path(), CorpusJoin::kRowsJoined, &joined).is_ok());
  // rows: "", " = Title = \n", "", " Text .\n"
  EXPECT_EQ(joined, "\n\n = Title = \n\n\n\n\n Text .\n");
}

TEST(BenchmarkRegistry, MissingFileSaysWhereAndHowToGetIt) {
  testing::TempDir empty("missing");
  Benchmark benchmark;
  const Status status = load_benchmark("advbench", empty.path(), {}, &benchmark);
  EXPECT_EQ(status.code(), Status::Code::kNotFound);
  EXPECT_NE(status.message().find("advbench/harmful_behaviors.csv"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("$KVSAFE_DATA"), std::string::npos);
  EXPECT_NE(status.message().find("kvsafe datasets pull"), std::string::npos);
}

TEST(BenchmarkRegistry, UnknownIfevalAndBadOptions) {
  Benchmark benchmark;
  const std::filesystem::path dir = "/nonexistent";
  const Status unknown = load_benchmark("advbnch", dir, {}, &benchmark);
  EXPECT_EQ(unknown.code(), Status::Code::kInvalidInput);
  EXPECT_NE(unknown.message().find("advbench"), std::string::npos);
  const Status ifeval = load_benchmark("ifeval", dir, {}, &benchmark);
  EXPECT_EQ(ifeval.code(), Status::Code::kNotFound);
  EXPECT_NE(ifeval.message().find("ifeval/input_data.jsonl"), std::string::npos);
  EXPECT_EQ(load_benchmark("calibration", dir, {.split = "dev"}, &benchmark).code(), Status::Code::kInvalidInput);
  EXPECT_EQ(load_benchmark("advbench", dir, {.split = "val"}, &benchmark).code(), Status::Code::kInvalidInput);
  EXPECT_EQ(load_benchmark("advbench", dir, {.limit = -1}, &benchmark).code(), Status::Code::kInvalidInput);
}

TEST(BenchmarkRegistry, MalformedCsvNamesFileAndLine) {
  testing::TempDir dir("malformed");
  testing::write_file(dir.path() / "xstest/xstest_prompts.csv",
                      "id,prompt,type,label,focus,note\n1,\"a fine prompt\",t,safe,f,\n2,\"b\",t,maybe,f,\n");
  Benchmark benchmark;
  try {
    (void)load_benchmark("xstest", dir.path(), {}, &benchmark);
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("xstest/xstest_prompts.csv:3: label must be safe or unsafe"),
              std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace kvsafe::eval
