// `kvsafe judge` with SmolLM2-135M-Instruct as the model judge (label `model`; skipped when the
// model cache lacks it). SmolLM2 is not a trained judge: the test checks the pipeline (rows
// stored with raw outputs and parse outcomes, both formats), not its accuracy. Two pairs per
// format (--limit 2) keep it well under a minute on a 2-core CPU.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "db/connection.h"
#include "tests/cli/cli_process.h"
#include "tests/cli/judge_test_database.h"
#include "tests/testing/model_files.h"

namespace kvsafe {
namespace {

TEST(JudgeCommandSmolLM2, BothFormatsStoreEveryJudgement) {
  const std::filesystem::path model = kvsafe::testing::smollm2_gguf_path();
  if (!std::filesystem::exists(model)) GTEST_SKIP() << model << " not found (scripts/fetch-model)";
  const auto dir = std::filesystem::temp_directory_path() / ("kvsafe_judge_smollm2_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto db = dir / "results.db";
  testing::make_judge_test_database(db);
  for (const std::string format : {"wildguard", "llama_guard3"}) {
    const std::string max_new = format == "wildguard" ? "12" : "4";
    const auto start = std::chrono::steady_clock::now();
    const auto run =
        testing::run_kvsafe("judge " + db.string() + " --judge model --model " + model.string() + " --format " +
                            format + " --max-new-tokens " + max_new + " --batch-size 2 --limit 2 --threads 1");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_EQ(run.exit_code, 0) << run.err;
    std::printf("kvsafe judge, SmolLM2 %s, 2 pairs: %.2f s wall with model load\n%s", format.c_str(), seconds,
                run.out.c_str());
    db::Connection connection(db, {.read_only = true});
    db::Statement rows(connection, "SELECT parsed, refused, raw_output FROM judgements WHERE judge_label = 'model:" +
                                       model.filename().string() + ":" + format + "'");
    int n = 0;
    while (rows.step()) {
      ++n;
      EXPECT_EQ(rows.column_int64(0) == 1, !rows.column_is_null(1));
      EXPECT_FALSE(rows.column_text(2).empty());
      std::printf("  parsed=%lld raw='%s'\n", static_cast<long long>(rows.column_int64(0)),
                  rows.column_text(2).c_str());
    }
    EXPECT_EQ(n, 2);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvsafe
