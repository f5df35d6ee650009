// `kvsafe diagnose` end to end with the real binary, stories260K and real SQLite
// (fixtures/stories_diagnose.yaml): the layer ablation runs, the cells that depend on its
// result are planned while the run goes on and carry the ids they came from, the printed
// critical layers agree with flips counted by SQL, a resume after the ablation with another
// rank count derives exactly the cells a single run does, and explicit layers derive nothing.

#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "tests/integration/run_harness.h"

namespace kvsafe::testing {
namespace {

std::string diagnose_command(const std::filesystem::path& grid, const std::filesystem::path& db,
                             const std::string& extra = "") {
  return kvsafe_binary() + " diagnose " + grid.string() + " --db " + db.string() + extra;
}

// The fixture grid with its relative paths made absolute and `diagnose_lines` replacing its
// tasks line, written into `dir`.
std::filesystem::path grid_variant(const std::filesystem::path& dir, const std::string& name,
                                   const std::string& tasks_line) {
  std::string text = slurp(run_fixture("stories_diagnose.yaml"));
  const auto replace = [&text](const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  };
  replace("../../../../shared", std::string(KVSAFE_SOURCE_DIR) + "/../shared");
  replace("markers_file: stories_diagnose_markers.txt",
          "markers_file: " + run_fixture("stories_diagnose_markers.txt").string());
  replace("  tasks: [layer_ablation, pcr, mitigation]\n", tasks_line);
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path;
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
  const auto done = run_to_end(diagnose_command(run_fixture("stories_diagnose.yaml"), db), "", dir / "err.txt");
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
  const auto shown = run_to_end(
      "sh -c '" + kvsafe_binary() + " diagnose " + db.string() + " --show > " + (dir / "show.txt").string() + "'", "",
      dir / "show_err.txt");
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const std::string text = slurp(dir / "show.txt");
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
  // The diagnosis after the run is the same text.
  EXPECT_NE(slurp(dir / "err.txt").find("diagnose: "), std::string::npos);
}

TEST(Diagnose, ExplicitCriticalLayersDeriveNothing) {
  ScratchDir dir;
  const auto grid = grid_variant(dir.path(), "explicit.yaml", "  tasks: [pcr]\n  critical_layers: [1]\n");
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
