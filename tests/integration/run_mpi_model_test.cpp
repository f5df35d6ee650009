// `kvsafe run` on the real SmolLM2-135M-Instruct: one process and mpirun with 3 ranks (2
// workers) store the same answers, token for token (label model: skipped without the model,
// which scripts/fetch-model puts in the model cache).
#include "tests/integration/run_harness.h"
#include "tests/testing/model_files.h"

namespace kvsafe::testing {
namespace {

constexpr int kSmolGenerations = 8;  // fixtures/smollm2_run.yaml: 2 cells x 4 prompts

TEST(RunMpiSmolLM2, SameAnswersInProcessAndOnThreeRanks) {
  if (!std::filesystem::exists(smollm2_gguf_path())) GTEST_SKIP() << "SmolLM2 not in the model cache";
  ScratchDir dir;
  const auto one = dir / "one.db";
  const auto three = dir / "three.db";
  const auto alone = run_to_end(run_command(one, "smollm2_run.yaml"), "", dir / "err1.txt");
  ASSERT_EQ(alone.exit_code, 0) << alone.err;
  const auto ranks = run_to_end(mpirun(3) + run_command(three, "smollm2_run.yaml"), "", dir / "err3.txt");
  ASSERT_EQ(ranks.exit_code, 0) << ranks.err;
  const auto rows = generation_rows(one);
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(kSmolGenerations));
  EXPECT_EQ(generation_rows(three), rows);
  EXPECT_GT(count(one, "SELECT sum(output_tokens) FROM generations"), kSmolGenerations);
  EXPECT_EQ(count(three, "SELECT ranks FROM runs"), 3);
  EXPECT_EQ(count(three, "SELECT count(*) FROM runs WHERE json_extract(models_json, '$[0].chat_template') = 'smollm2'"),
            1);
  std::cerr << "SmolLM2: in process " << alone.seconds << " s, 3 ranks " << ranks.seconds << " s\n";
}

}  // namespace
}  // namespace kvsafe::testing
