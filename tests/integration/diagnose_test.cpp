// `kvsafe diagnose` end to end with the real binary, stories260K and real SQLite
// (fixtures/stories_diagnose.yaml): the layer ablation runs, the cells that depend on its
// result are planned while the run goes on and carry the ids they came from, the printed
// critical layers agree with flips counted by SQL, a resume after the ablation with another
// rank count derives exactly the cells a single run does, and explicit layers derive nothing.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "tests/integration/diagnose_harness.h"

namespace kvsafe::testing {
namespace {

std::string diagnose_command(const std::filesystem::path& grid, const std::filesystem::path& db,
                             const std::string& extra = "") {
  return kvsafe_binary() + " diagnose " + grid.string() + " --db " + db.string() + extra;
}

std::set<std::string> strings(const std::filesystem::path& db, const std::string& sql) {
  SQLite::Database database(db.string(), SQLite::OPEN_READONLY);
  SQLite::Statement query(database, sql);
  std::set<std::string> out;
  while (query.executeStep()) out.insert(query.getColumn(0).getString());
  return out;
}

std::string cell_of_role(const std::filesystem::path& db, const std::string& task, const std::string& arm) {
  const auto ids =
      strings(db, "SELECT cell_id FROM diagnosis_roles WHERE task = '" + task + "' AND arm = '" + arm + "'");
  return ids.size() == 1 ? *ids.begin() : std::string();
}

// Layers whose conditional flip, counted in SQL over the stored verdicts, is >= 10%.
std::set<std::string> critical_layers_by_sql(const std::filesystem::path& db) {
  return strings(db,
                 "WITH base AS (SELECT g.prompt_index, g.refused FROM generations g JOIN diagnosis_roles r ON "
                 "r.cell_id = g.cell_id WHERE r.task = 'baseline' AND r.arm = 'calibration'), "
                 "flips AS (SELECT r.arm, SUM(b.refused = 1 AND g.refused = 0) AS f, SUM(b.refused = 1) AS n "
                 "FROM diagnosis_roles r JOIN generations g ON g.cell_id = r.cell_id JOIN base b ON b.prompt_index = "
                 "g.prompt_index WHERE r.task = 'layer_ablation' GROUP BY r.arm) "
                 "SELECT 'L' || substr(arm, 7) FROM flips WHERE n > 0 AND 1.0 * f / n >= 0.1");
}

TEST(Diagnose, PlansTheDependentCellsAsTheAblationIsStoredAndPrintsTheDiagnosis) {
  ScratchDir dir;
  const auto db = dir / "diagnose.db";
  const auto done = run_to_end("sh -c '" + diagnose_command(run_fixture("stories_diagnose.yaml"), db) + " > " +
                                   (dir / "run_out.txt").string() + "'",
                               "", dir / "err.txt");
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM cells WHERE status != 'done'"), 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM diagnosis_roles WHERE task = 'layer_ablation'"), 5);  // 5 layers
  // PCR's per-channel arm was derived: its id hashes the baseline's and the five ablation cells' ids.
  const std::string per_channel = cell_of_role(db, "pcr", "per_channel");
  ASSERT_FALSE(per_channel.empty()) << done.err;
  SQLite::Database database(db.string(), SQLite::OPEN_READONLY);
  const auto json = nlohmann::json::parse(
      database.execAndGet("SELECT canonical_json FROM cells WHERE id = '" + per_channel + "'").getString());
  std::set<std::string> expected_from =
      strings(db,
              "SELECT cell_id FROM diagnosis_roles WHERE task = 'layer_ablation' OR (task = 'baseline' AND arm = "
              "'calibration')");
  const auto from = json.at("derived_from").get<std::vector<std::string>>();
  EXPECT_EQ(std::set<std::string>(from.begin(), from.end()), expected_from);
  EXPECT_TRUE(std::is_sorted(from.begin(), from.end()));
  // The per-tensor arm is the ablation cell of the top critical layer itself.
  const std::string per_tensor = cell_of_role(db, "pcr", "per_tensor");
  EXPECT_EQ(count(db, "SELECT count(*) FROM diagnosis_roles WHERE task = 'layer_ablation' AND cell_id = '" +
                          per_tensor + "'"),
            1);
  // Mitigation at 3 bits: the three strategies without a critical layer and the four with one.
  EXPECT_EQ(count(db, "SELECT count(*) FROM diagnosis_roles WHERE task = 'mitigation'"), 7);

  // `--show` prints the stored diagnosis; the critical layers it names are the ones SQL counts.
  const std::string text = shown_diagnosis(db, dir.path());
  EXPECT_NE(text.find("== stories260k (experiment stories-diagnose): 5 layers"), std::string::npos) << text;
  EXPECT_NE(text.find("mode: "), std::string::npos) << text;
  EXPECT_NE(text.find("PCR at L"), std::string::npos) << text;
  const auto line_start = text.find("critical layers: ");
  ASSERT_NE(line_start, std::string::npos) << text;
  const std::string line = text.substr(line_start, text.find('\n', line_start) - line_start);
  const auto sql_critical = critical_layers_by_sql(db);
  ASSERT_FALSE(sql_critical.empty()) << text;
  for (const std::string& layer : sql_critical) EXPECT_NE(line.find(layer), std::string::npos) << line;
  EXPECT_EQ(static_cast<std::size_t>(std::count(line.begin(), line.end(), 'L')), sql_critical.size()) << line;
  // What the run printed at its end is the stored diagnosis, word for word.
  EXPECT_NE(slurp(dir / "run_out.txt").find(text), std::string::npos) << slurp(dir / "run_out.txt");

  // The decision is also stored: one diagnoses row for the model, with the mode --show prints,
  // the calibration baseline's cell, and its layer profile in pcr_layers, critical layers marked.
  EXPECT_EQ(count(db, "SELECT count(*) FROM diagnoses WHERE model = 'stories260k'"), 1);
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM diagnoses d JOIN diagnosis_roles r ON r.cell_id = d.cell_id AND "
                  "r.task = 'baseline' AND r.arm = 'calibration'"),
            1);
  {
    SQLite::Database stored(db.string(), SQLite::OPEN_READONLY);
    const std::string mode = stored.execAndGet("SELECT mode FROM diagnoses").getString();
    EXPECT_NE(text.find("mode: " + mode), std::string::npos) << mode << "\n" << text;
  }
  EXPECT_EQ(count(db, "SELECT count(*) FROM pcr_layers"), 5);
  EXPECT_EQ(count(db, "SELECT count(*) FROM pcr_layers WHERE critical = 1"),
            static_cast<std::int64_t>(sql_critical.size()));

  // `kvsafe tables` writes the diagnosis tables it can fill, one file each.
  const auto tables =
      run_to_end(kvsafe_binary() + " tables " + db.string() + " --format csv --out " + (dir / "tables").string(), "",
                 dir / "tables_err.txt");
  ASSERT_EQ(tables.exit_code, 0) << tables.err;
  for (const char* name : {"individual_layer_sensitivity", "taxonomy", "pcr_framework", "mitigation_main"}) {
    EXPECT_TRUE(std::filesystem::exists(dir / "tables" / (std::string(name) + ".csv"))) << name;
  }
  const std::string layers_csv = slurp(dir / "tables" / "individual_layer_sensitivity.csv");
  EXPECT_EQ(std::count(layers_csv.begin(), layers_csv.end(), '\n'), 1 + 5);  // header + 5 layers
}

TEST(Diagnose, ChannelAblationQuantizesTheOutliersFoundByTheKeyMagnitudePass) {
  ScratchDir dir;
  const auto grid = diagnose_grid_variant(dir.path(), "channels.yaml", "  tasks: [layer_ablation, channel_ablation]\n");
  const auto db = dir / "channels.db";
  const auto done = run_to_end(diagnose_command(grid, db), "", dir / "err.txt");
  ASSERT_EQ(done.exit_code, 0) << done.err;
  // The pass: 8 prompts x 5 layers, 32 channels each (stories260K: 4 KV heads of 8).
  EXPECT_EQ(count(db, "SELECT count(*) FROM key_magnitudes"), 8 * 5);
  EXPECT_EQ(count(db, "SELECT count(*) FROM key_magnitudes WHERE json_array_length(max_abs_json) = 32"), 8 * 5);
  const std::string outliers = cell_of_role(db, "channel_ablation", "outliers");
  ASSERT_FALSE(outliers.empty()) << done.err;
  // The outliers cell quantizes exactly the channels whose max |K| over the 8 prompts at the
  // critical layer is >= the 95th percentile, recomputed here from the stored rows.
  SQLite::Database database(db.string(), SQLite::OPEN_READONLY);
  const auto cell = nlohmann::json::parse(
      database.execAndGet("SELECT canonical_json FROM cells WHERE id = '" + outliers + "'").getString());
  const int layer = cell.at("kv").at("layers").at(0).get<int>();
  std::vector<float> max_abs(32, 0.0F);
  SQLite::Statement rows(database, "SELECT max_abs_json FROM key_magnitudes WHERE layer = " + std::to_string(layer));
  while (rows.executeStep()) {
    const auto values = nlohmann::json::parse(rows.getColumn(0).getString()).get<std::vector<float>>();
    for (std::size_t i = 0; i < values.size(); ++i) max_abs[i] = std::max(max_abs[i], values[i]);
  }
  std::vector<float> sorted = max_abs;
  std::sort(sorted.begin(), sorted.end());
  // numpy's linear percentile at 95 of 32 values: position 0.95 * 31 = 29.45.
  const float threshold = sorted[29] + (sorted[30] - sorted[29]) * 0.45F;
  std::vector<int> expected;
  for (int c = 0; c < 32; ++c) {
    if (max_abs[static_cast<std::size_t>(c)] >= threshold) expected.push_back(c);
  }
  EXPECT_EQ(cell.at("kv").at("quantize_channels").get<std::vector<int>>(), expected);
  // The matched random control has as many channels; every subset ran.
  const std::string random = cell_of_role(db, "channel_ablation", "random_matched");
  const auto random_cell = nlohmann::json::parse(
      database.execAndGet("SELECT canonical_json FROM cells WHERE id = '" + random + "'").getString());
  EXPECT_EQ(random_cell.at("kv").at("quantize_channels").size(), expected.size());
  EXPECT_EQ(count(db, "SELECT count(*) FROM cells WHERE status != 'done'"), 0);
  EXPECT_GE(count(db, "SELECT count(*) FROM diagnosis_roles WHERE task = 'channel_ablation'"), 8);
  const std::string text = shown_diagnosis(db, dir.path());
  EXPECT_NE(text.find("outlier channels at L" + std::to_string(layer)), std::string::npos) << text;
  EXPECT_NE(text.find("channel ablation at L" + std::to_string(layer)), std::string::npos) << text;
}

TEST(Diagnose, MitigateAutoDiagnosesThenVerifiesThePrescribedFixOnTheGridsBenchmark) {
  ScratchDir dir;
  const auto grid = diagnose_grid_variant(dir.path(), "mitigate.yaml", "  mitigate: auto\n  critical_layers: [0]\n");
  const auto db = dir / "mitigate.db";
  const auto done = run_to_end("sh -c '" + diagnose_command(grid, db) + " > " + (dir / "out.txt").string() + "'", "",
                               dir / "err.txt");
  ASSERT_EQ(done.exit_code, 0) << done.err;
  // The fix is derived from the PCR cells (the layer is named, so no ablation cell is involved).
  const std::string fix = cell_of_role(db, "mitigate", "int3 fix custom");
  ASSERT_FALSE(fix.empty()) << slurp(dir / "out.txt") << done.err;
  SQLite::Database database(db.string(), SQLite::OPEN_READONLY);
  const auto cell = nlohmann::json::parse(
      database.execAndGet("SELECT canonical_json FROM cells WHERE id = '" + fix + "'").getString());
  const auto from = cell.at("derived_from").get<std::vector<std::string>>();
  EXPECT_EQ(std::set<std::string>(from.begin(), from.end()),
            strings(db, "SELECT cell_id FROM diagnosis_roles WHERE task = 'pcr' AND arm != 'baseline'"));
  // Its quantizer is the one the printed prescription names.
  const auto detail = nlohmann::json::parse(
      database.execAndGet("SELECT detail_json FROM diagnosis_roles WHERE cell_id = '" + fix + "' AND task = 'mitigate'")
          .getString());
  const std::map<std::string, std::string> labels = {
      {"fp16_critical_layer", "int3-ptok-asym+fp16[0]"},
      {"per_channel_critical_group64_rest", "int3-g64-asym+int3-pchan-asym[0]"},
      {"group64_all", "int3-g64-asym"}};
  const std::string prescription = detail.at("prescription").get<std::string>();
  ASSERT_EQ(labels.count(prescription), 1U) << prescription;
  EXPECT_EQ(
      database
          .execAndGet("SELECT k.label FROM cells c JOIN kv_specs k ON k.hash = c.kv_hash WHERE c.id = '" + fix + "'")
          .getString(),
      labels.at(prescription));
  EXPECT_NE(slurp(dir / "out.txt").find("fix: " + prescription), std::string::npos) << slurp(dir / "out.txt");
  EXPECT_EQ(count(db, "SELECT count(*) FROM cells WHERE status != 'done'"), 0);
  // The full-precision cell of the check is the grid's own cell (`kvsafe run` would reuse it).
  const std::string baseline = cell_of_role(db, "mitigate", "baseline custom");
  const auto dry = run_to_end("sh -c '" + kvsafe_binary() + " run " + grid.string() + " --db " +
                                  (dir / "other.db").string() + " --dry-run > " + (dir / "dry.txt").string() + "'",
                              "", dir / "dry_err.txt");
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(slurp(dir / "dry.txt").find(baseline.substr(0, 16)), std::string::npos) << slurp(dir / "dry.txt");
}

TEST(Diagnose, ExplicitCriticalLayersDeriveNothing) {
  ScratchDir dir;
  const auto grid = diagnose_grid_variant(dir.path(), "explicit.yaml", "  tasks: [pcr]\n  critical_layers: [1]\n");
  const auto db = dir / "explicit.db";
  const auto done = run_to_end(diagnose_command(grid, db), "", dir / "err.txt");
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM cells WHERE canonical_json LIKE '%derived_from%'"), 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM diagnosis_roles WHERE task = 'layer_ablation'"), 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM cells"), 3);  // baseline, per tensor and per channel at L1
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM kv_specs k JOIN cells c ON c.kv_hash = k.hash WHERE k.label = "
                  "'int3-pchan-sym@[1]'"),
            1);
}

TEST(Diagnose, ADatabaseIsNotAGridToRun) {
  ScratchDir dir;
  const auto db = dir / "empty.db";
  SQLite::Database(db.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE).exec("CREATE TABLE t(x)");
  const auto done = run_to_end(kvsafe_binary() + " diagnose " + db.string(), "", dir / "err.txt");
  EXPECT_EQ(done.exit_code, kvsafe::kExitUsage);
  EXPECT_NE(done.err.find("is a results database: add --show"), std::string::npos) << done.err;
}

}  // namespace
}  // namespace kvsafe::testing
