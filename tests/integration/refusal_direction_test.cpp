// The judge-free diagnostic end to end: `kvsafe run` on a grid with a calibration entry (task
// refusal_direction) and refusal cells, on stories260K, then `kvsafe diagnose DB --show`. The
// class sums land in direction_sums shard by shard; the report reads the direction from the
// full-precision cell, the erosion of every quantizer, and ranks it against the flips.

#include <nlohmann/json.hpp>

#include <regex>
#include <string>

#include "tests/integration/diagnose_harness.h"

namespace kvsafe::testing {
namespace {

double mean_erosion(const std::string& shown, const std::string& label) {
  std::smatch match;
  const std::regex pattern(label + R"( +mean erosion (-?[0-9.]+), largest)");
  EXPECT_TRUE(std::regex_search(shown, match, pattern)) << label << " in:\n" << shown;
  return match.empty() ? 0.0 : std::stod(match[1].str());
}

TEST(RefusalDirection, RunStoresClassSumsAndDiagnoseShowsErosionAgainstFlips) {
  ScratchDir dir;
  const auto grid = refusal_direction_grid(dir.path(), "grid.yaml");
  const auto db = dir / "direction.db";
  const auto run = run_to_end(kvsafe_binary() + " run " + grid.string() + " --db " + db.string(), "", dir / "err.txt");
  ASSERT_EQ(run.exit_code, 0) << run.err;

  EXPECT_EQ(count(db, "SELECT count(*) FROM cells WHERE task = 'refusal_direction' AND status = 'done'"), 4);
  // 12 + 12 prompts in shards of 8: [0, 8) harmful, [8, 16) both classes, [16, 24) harmless;
  // one row per class present and layer (5), per cell (4).
  EXPECT_EQ(count(db, "SELECT count(*) FROM direction_sums"), 4 * (5 + 10 + 5));
  EXPECT_EQ(count(db, "SELECT sum(prompts) FROM direction_sums WHERE layer = 0 AND harmful = 1"), 4 * 12);
  EXPECT_EQ(count(db, "SELECT sum(prompts) FROM direction_sums WHERE layer = 0 AND harmful = 0"), 4 * 12);
  EXPECT_EQ(count(db, "SELECT count(*) FROM direction_sums WHERE length(sum_f32) != 4 * 64"), 0);  // hidden_size 64
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM generations g JOIN cells c ON c.id = g.cell_id "
                  "WHERE c.task = 'refusal_direction'"),
            0);  // prefill only: nothing generated, nothing judged

  const std::string shown = shown_diagnosis(db, dir.path());
  EXPECT_NE(shown.find("Refusal direction: stories260k / calibration  sample=12 seed=0"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("no diagnosis in this database"), std::string::npos) << shown;
  // int8 barely moves the harmful prompts along the direction; int2 moves them far more.
  const double int8 = mean_erosion(shown, "int8-ptok-asym"), int2 = mean_erosion(shown, "int2-ptok-asym");
  EXPECT_LT(std::abs(int8), 0.1);
  EXPECT_GT(int2, int8 + 0.1);
  EXPECT_NE(shown.find("predicts the flips of custom"), std::string::npos) << shown;
  EXPECT_NE(shown.find("n = 3 quantizers"), std::string::npos) << shown;

  // --export-direction (no --show needed: it runs nothing) writes the full-precision cell's
  // direction of every layer, which a grid's steer entry reads.
  const auto file = dir / "direction.json";
  const auto exported =
      run_to_end(kvsafe_binary() + " diagnose " + db.string() + " --export-direction " + file.string(), "",
                 dir / "export_err.txt");
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const auto json = nlohmann::json::parse(slurp(file));
  EXPECT_EQ(json.at("format"), "kvsafe-refusal-direction/1");
  EXPECT_EQ(json.at("model"), "stories260k");
  EXPECT_EQ(json.at("harmful_prompts"), 12);
  EXPECT_EQ(json.at("harmless_prompts"), 12);
  SQLite::Database database(db.string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(json.at("cell_id").get<std::string>(),
            database
                .execAndGet("SELECT c.id FROM cells c JOIN kv_specs k ON k.hash = c.kv_hash WHERE c.task = "
                            "'refusal_direction' AND k.label = 'none'")
                .getString());
  ASSERT_EQ(json.at("directions").size(), 5U);
  for (const auto& layer : json.at("directions")) EXPECT_EQ(layer.size(), 64U);
}

}  // namespace
}  // namespace kvsafe::testing
