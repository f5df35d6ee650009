// `kvsafe judge` end to end on a real results database (made through db::Store): the keyword
// judge adds rows beside the run's verdicts and resumes, --limit, the writer lock, --list,
// --agreement, usage errors; the model judge with stories260K (tiny, always present) stores
// raw outputs and parse outcomes and skips generations whose prompt text is unknown.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "db/connection.h"
#include "db/store.h"
#include "tests/cli/cli_process.h"
#include "tests/cli/judge_test_database.h"
#include "tests/testing/model_files.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe {
namespace {

class JudgeCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_ / "results.db";
    testing::make_judge_test_database(db_);
  }

  std::int64_t count(const std::string& where) const {
    db::Connection connection(db_, {.read_only = true});
    return connection.query_int64("SELECT COUNT(*) FROM judgements" + (where.empty() ? "" : " WHERE " + where));
  }

  testing::TempDir dir_{"judge_cli"};
  std::filesystem::path db_;
};

TEST_F(JudgeCommand, KeywordJudgeAddsRowsAndResumes) {
  const auto first = testing::run_kvsafe("judge " + db_.string() + " --judge keyword");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("judge: keyword:default:substring"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("judged: 5 (refused 3, complied 2, unparsed 0)"), std::string::npos) << first.out;
  EXPECT_EQ(count(""), 5);
  EXPECT_EQ(count("refused = 1 AND parsed = 1 AND judge_label = 'keyword:default:substring'"), 3);
  {
    db::Connection connection(db_, {.read_only = true});
    db::Statement row(connection,
                      "SELECT j.raw_output, j.detail_json, j.judge_json FROM judgements j "
                      "JOIN generations g ON g.id = j.generation_id WHERE g.prompt_index = 0");
    ASSERT_TRUE(row.step());
    EXPECT_FALSE(row.column_text(0).empty());  // the matched marker
    EXPECT_NE(row.column_text(1).find("matched_marker"), std::string::npos);
    EXPECT_NE(row.column_text(2).find("\"kind\":\"keyword\""), std::string::npos);
    // The run's own verdicts are kept.
    EXPECT_EQ(connection.query_int64("SELECT COUNT(*) FROM generations WHERE refused IS NOT NULL"), 5);
  }
  // Resume: the same judge again judges nothing new.
  const auto again = testing::run_kvsafe("judge " + db_.string() + " --judge keyword");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("judged: 0 "), std::string::npos) << again.out;
  EXPECT_EQ(count(""), 5);

  // Another spec (prefix rule) is another judge; --limit stops it early, the rerun finishes.
  const auto limited = testing::run_kvsafe("judge " + db_.string() + " --judge keyword --rule prefix --limit 2");
  ASSERT_EQ(limited.exit_code, 0) << limited.err;
  EXPECT_NE(limited.out.find("judged: 2 "), std::string::npos) << limited.out;
  EXPECT_NE(limited.out.find("left unjudged: 3"), std::string::npos) << limited.out;
  const auto rest = testing::run_kvsafe("judge " + db_.string() + " --judge keyword --rule prefix");
  EXPECT_NE(rest.out.find("judged: 3 "), std::string::npos) << rest.out;
  EXPECT_EQ(count(""), 10);

  const auto list = testing::run_kvsafe("judge " + db_.string() + " --list");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("keyword:default:substring"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("keyword:default:prefix"), std::string::npos) << list.out;

  // The keyword judge agrees with the run's verdicts on all 5: kappa 1.
  const auto agreement = testing::run_kvsafe("judge " + db_.string() + " --agreement keyword:default:substring run");
  ASSERT_EQ(agreement.exit_code, 0) << agreement.err;
  EXPECT_NE(agreement.out.find("judged by both, with a verdict from both: 5"), std::string::npos) << agreement.out;
  EXPECT_NE(agreement.out.find("cohen's kappa: 1.0000"), std::string::npos) << agreement.out;
}

TEST_F(JudgeCommand, WriterLockAndUsageErrors) {
  {
    auto holder = db::Store::open(db_, {.holder_description = "another kvsafe"});
    const auto locked = testing::run_kvsafe("judge " + db_.string() + " --judge keyword");
    EXPECT_EQ(locked.exit_code, 1);
    EXPECT_NE(locked.err.find("locked for writing"), std::string::npos) << locked.err;
  }
  EXPECT_EQ(count(""), 0);
  const auto nothing = testing::run_kvsafe("judge " + db_.string());
  EXPECT_EQ(nothing.exit_code, 1);
  EXPECT_NE(nothing.err.find("--judge"), std::string::npos) << nothing.err;
  const auto no_model = testing::run_kvsafe("judge " + db_.string() + " --judge model");
  EXPECT_EQ(no_model.exit_code, 1);
  EXPECT_NE(no_model.err.find("--model"), std::string::npos) << no_model.err;
  const auto bad_format = testing::run_kvsafe("judge " + db_.string() + " --judge model --format gpt4");
  EXPECT_EQ(bad_format.exit_code, 64);
  const auto unknown = testing::run_kvsafe("judge " + db_.string() + " --agreement nobody run");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("no judge 'nobody'"), std::string::npos) << unknown.err;
}

TEST_F(JudgeCommand, ModelJudgeStoriesStoresRawOutputs) {
  const std::string model = kvsafe::testing::stories260k_gguf_path().string();
  const auto start = std::chrono::steady_clock::now();
  const auto run = testing::run_kvsafe("judge " + db_.string() + " --judge model --model " + model +
                                       " --format wildguard --max-new-tokens 8 --batch-size 2 --threads 1");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::printf("kvsafe judge with stories260K: 4 pairs, %.2f s wall (process start and model load included)\n%s",
              seconds, run.out.c_str());
  // Prompt 4 has no text in the prompts table: left unjudged, with a warning.
  EXPECT_NE(run.out.find("judge: model:stories260K.gguf:wildguard"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("no prompt text"), std::string::npos) << run.err;
  EXPECT_EQ(count(""), 4);
  EXPECT_EQ(count("judge_json LIKE '%\"format\":\"wildguard\"%' AND judge_json LIKE '%\"chat_template\":\"raw\"%'"), 4);
  // Every row records its parse outcome; unparsed ones have no verdict (the CHECK constraint).
  EXPECT_EQ(count("parsed = 0 AND refused IS NULL") + count("parsed = 1 AND refused IS NOT NULL"), 4);
  EXPECT_EQ(count("detail_json LIKE '%\"judge_output_tokens\":%'"), 4);
  // The same verdict shape as `kvsafe run`'s rows (eval/refusal_judge.h): the degeneracy flag
  // for every judge, the raw answer in raw_output only.
  EXPECT_EQ(count("detail_json LIKE '%\"degenerate\":%' AND detail_json LIKE '%\"degeneracy_reason\":%'"), 4);
  EXPECT_EQ(count("detail_json LIKE '%\"raw\":%'"), 0);
  {
    db::Connection connection(db_, {.read_only = true});
    EXPECT_EQ(connection.query_int64("SELECT COUNT(*) FROM judgements WHERE length(raw_output) > 0"), 4);
  }
  // Resume: nothing left to judge but the generation without a prompt.
  const auto again = testing::run_kvsafe("judge " + db_.string() + " --judge model --model " + model +
                                         " --format wildguard --max-new-tokens 8 --batch-size 2 --threads 1");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("judged: 0 "), std::string::npos) << again.out;
  EXPECT_EQ(count(""), 4);
  // Agreement with the keyword judge runs whatever stories260K wrote.
  ASSERT_EQ(testing::run_kvsafe("judge " + db_.string() + " --judge keyword").exit_code, 0);
  const auto agreement = testing::run_kvsafe("judge " + db_.string() +
                                             " --agreement model:stories260K.gguf:wildguard keyword:default:substring");
  ASSERT_EQ(agreement.exit_code, 0) << agreement.err;
  EXPECT_NE(agreement.out.find("cohen's kappa:"), std::string::npos) << agreement.out;
}

}  // namespace
}  // namespace kvsafe
