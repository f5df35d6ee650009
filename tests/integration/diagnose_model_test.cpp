// `kvsafe diagnose` on the real SmolLM2-135M-Instruct (label model; skipped without it in the
// model cache): all 30 layer-ablation cells run and are registered under their roles, and the
// stored decision follows what the baseline refused: none refused -> the report says the flips
// are undefined and stores no mode; some refused -> a mode and its layer profile are stored.

#include "tests/integration/diagnose_harness.h"
#include "tests/testing/model_files.h"

namespace kvsafe::testing {
namespace {

TEST(DiagnoseSmolLM2, AblatesEveryLayerAndConcludesOnlyWhatTheBaselineAllows) {
  if (!std::filesystem::exists(smollm2_gguf_path())) GTEST_SKIP() << "SmolLM2 not in the model cache";
  ScratchDir dir;
  const auto db = dir / "smollm2.db";
  const auto run = run_to_end(
      kvsafe_binary() + " diagnose " + run_fixture("smollm2_diagnose.yaml").string() + " --db " + db.string(), "",
      dir / "err.txt");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM diagnosis_roles WHERE task = 'layer_ablation'"), 30);
  EXPECT_EQ(count(db, "SELECT count(*) FROM cells WHERE status != 'done'"), 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), 4 * (1 + 30));  // baseline + 30 layers

  const std::int64_t refused =
      count(db,
            "SELECT count(*) FROM generations g JOIN diagnosis_roles r ON r.cell_id = g.cell_id AND "
            "r.task = 'baseline' AND r.arm = 'calibration' WHERE g.refused = 1");
  const std::string text = shown_diagnosis(db, dir.path());
  EXPECT_NE(text.find("== smollm2-135m (experiment smollm2-diagnose): 30 layers"), std::string::npos) << text;
  if (refused == 0) {
    EXPECT_NE(text.find("undefined: the calibration baseline refused 0 of 4"), std::string::npos) << text;
    EXPECT_EQ(count(db, "SELECT count(*) FROM diagnoses"), 0) << text;
  } else {
    EXPECT_EQ(count(db, "SELECT count(*) FROM diagnoses"), 1) << text;
    EXPECT_EQ(count(db, "SELECT count(*) FROM pcr_layers"), 30) << text;
  }
}

}  // namespace
}  // namespace kvsafe::testing
