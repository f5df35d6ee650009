// IFEval end to end on the real SmolLM2-135M-Instruct (label model: skipped without the model,
// which scripts/fetch-model puts in the model cache): `kvsafe run` generates the first 16 prompts
// at full precision and int4, stores one verdict row per instruction, and `kvsafe status
// --summary` and `kvsafe tables` report the accuracies.
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

#include "tests/integration/run_harness.h"
#include "tests/testing/model_files.h"

namespace kvsafe::testing {
namespace {

constexpr int kPrompts = 16;  // fixtures/smollm2_ifeval.yaml

// The data the run reads (Child passes KVSAFE_DATA = the shared datasets beside the checkout).
std::filesystem::path ifeval_data() {
  return std::filesystem::path(KVSAFE_SOURCE_DIR) / "../shared/datasets/ifeval/input_data.jsonl";
}

TEST(IfevalSmolLM2, SixteenPromptsAtFullPrecisionAndInt4EndToEnd) {
  if (!std::filesystem::exists(smollm2_gguf_path())) GTEST_SKIP() << "SmolLM2 not in the model cache";
  if (!std::filesystem::exists(ifeval_data())) GTEST_SKIP() << "no " << ifeval_data();
  // The instruction count of the first 16 prompts, read from the data file itself.
  std::int64_t instructions = 0;
  {
    std::ifstream in(ifeval_data());
    std::string line;
    for (int i = 0; i < kPrompts && std::getline(in, line); ++i) {
      instructions += static_cast<std::int64_t>(nlohmann::json::parse(line)["instruction_id_list"].size());
    }
  }
  ScratchDir dir;
  const auto db = dir / "ifeval.db";
  const auto run = run_to_end(run_command(db, "smollm2_ifeval.yaml"), "", dir / "err.txt");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), 2 * kPrompts);
  EXPECT_EQ(count(db, "SELECT count(*) FROM ifeval_verdicts"), 2 * instructions);
  // Every answer has its verdicts, and none is unscored among these prompts.
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM generations g WHERE NOT EXISTS (SELECT 1 FROM ifeval_verdicts v WHERE "
                  "v.cell_id = g.cell_id AND v.prompt_index = g.prompt_index)"),
            0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM ifeval_verdicts WHERE strict IS NULL OR unscored != ''"), 0);
  // "No commas" has an oracle anyone can write: strict holds exactly when the answer is not blank
  // and has no comma.
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM ifeval_verdicts v JOIN generations g ON g.cell_id = v.cell_id AND "
                  "g.prompt_index = v.prompt_index WHERE v.instruction_id = 'punctuation:no_comma' AND v.strict != "
                  "(instr(g.output_text, ',') = 0 AND trim(g.output_text, ' ' || char(9, 10, 13)) != '')"),
            0);
  EXPECT_GT(count(db, "SELECT count(*) FROM ifeval_verdicts WHERE instruction_id = 'punctuation:no_comma'"), 0);
  // A loose verdict is never stricter than the strict one.
  EXPECT_EQ(count(db, "SELECT count(*) FROM ifeval_verdicts WHERE strict = 1 AND loose = 0"), 0);
  // IFEval prompts are benign: the refusal judge's verdicts are stored as such.
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations WHERE json_extract(judge_json, '$.harmful') != 0"), 0);

  const auto out = dir / "summary.txt";
  const auto summary =
      run_to_end("sh -c '" + kvsafe_binary() + " status " + db.string() + " --summary > " + out.string() + "'", "",
                 dir / "err_summary.txt");
  ASSERT_EQ(summary.exit_code, 0) << summary.err;
  const std::string text = slurp(out);
  EXPECT_NE(text.find("smollm2-135m / ifeval (ifeval)"), std::string::npos) << text;
  EXPECT_NE(text.find("prompt strict [95% CI]"), std::string::npos) << text;
  EXPECT_NE(text.find(" of 16"), std::string::npos) << text;  // int4's lost/gained over 16 paired prompts
  const auto tables_out = dir / "tables.csv";
  const auto tables = run_to_end("sh -c '" + kvsafe_binary() + " tables " + db.string() +
                                     " --only ifeval_tradeoff --format csv > " + tables_out.string() + "'",
                                 "", dir / "err_tables.txt");
  ASSERT_EQ(tables.exit_code, 0) << tables.err;
  EXPECT_NE(slurp(tables_out).find("int4-ptok-asym"), std::string::npos) << slurp(tables_out);
  std::cerr << text;
  std::cerr << "SmolLM2 IFEval, 2 cells x 16 prompts: " << run.seconds << " s\n";
}

}  // namespace
}  // namespace kvsafe::testing
