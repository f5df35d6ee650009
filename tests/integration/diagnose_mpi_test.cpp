// `kvsafe diagnose` resumed after the layer ablation under mpirun: the dependent cells that a
// 3-rank run derives from the stored ablation are exactly those a single in-process run
// derives, with the same ids, once each, and the MPI workers rebuild them from the JSON the
// scheduler sends (they are not in the workers' expansion of the grid).

#include <set>

#include "tests/integration/diagnose_harness.h"

namespace kvsafe::testing {
namespace {

std::set<std::string> rows(const std::filesystem::path& db, const std::string& sql) {
  SQLite::Database database(db.string(), SQLite::OPEN_READONLY);
  SQLite::Statement query(database, sql);
  std::set<std::string> out;
  while (query.executeStep()) {
    std::string row;
    for (int i = 0; i < query.getColumnCount(); ++i) row += query.getColumn(i).getString() + "|";
    out.insert(row);
  }
  return out;
}

TEST(DiagnoseMpi, AResumeWithAnotherRankCountDerivesTheSameCells) {
  ScratchDir dir;
  const std::string all_tasks = "  tasks: [layer_ablation, pcr, protection_sweep]\n";
  const auto full = diagnose_grid_variant(dir.path(), "full.yaml", all_tasks);
  const auto ablation_only = diagnose_grid_variant(dir.path(), "ablation.yaml", "  tasks: [layer_ablation]\n");

  // One uninterrupted run in process.
  const auto single_db = dir / "single.db";
  const auto single = run_to_end(kvsafe_binary() + " diagnose " + full.string() + " --db " + single_db.string(), "",
                                 dir / "single_err.txt");
  ASSERT_EQ(single.exit_code, 0) << single.err;

  // The ablation alone, then the rest on 3 ranks (rank 0 schedules, 2 workers).
  const auto resumed_db = dir / "resumed.db";
  const auto first =
      run_to_end(kvsafe_binary() + " diagnose " + ablation_only.string() + " --db " + resumed_db.string(), "",
                 dir / "first_err.txt");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::int64_t ablation_cells = count(resumed_db, "SELECT count(*) FROM cells");
  const auto second =
      run_to_end(mpirun(3) + kvsafe_binary() + " diagnose " + full.string() + " --db " + resumed_db.string(), "",
                 dir / "second_err.txt");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_GT(count(resumed_db, "SELECT count(*) FROM cells"), ablation_cells);
  EXPECT_GT(count(resumed_db, "SELECT count(*) FROM cells WHERE canonical_json LIKE '%derived_from%'"), 0);

  const std::string cells = "SELECT id, status, n_prompts FROM cells";
  EXPECT_EQ(rows(resumed_db, cells), rows(single_db, cells));
  const std::string roles = "SELECT model, task, arm, cell_id, detail_json FROM diagnosis_roles";
  EXPECT_EQ(rows(resumed_db, roles), rows(single_db, roles));
  // Each prompt of each cell once: no shard ran twice, none was lost.
  const std::string answers = "SELECT cell_id, prompt_index, count(*) FROM generations GROUP BY cell_id, prompt_index";
  EXPECT_EQ(rows(resumed_db, answers), rows(single_db, answers));
  EXPECT_EQ(count(resumed_db, "SELECT count(*) FROM generations"),
            count(single_db, "SELECT count(*) FROM generations"));
  // The ablation cells did not run again on resume.
  EXPECT_EQ(count(resumed_db, "SELECT count(*) FROM shards WHERE attempts != 1"), 0);
  // The derived cells ran on the MPI workers, which rebuilt them from the scheduler's JSON.
  EXPECT_EQ(count(resumed_db, "SELECT ranks FROM runs ORDER BY id DESC LIMIT 1"), 3);
}

}  // namespace
}  // namespace kvsafe::testing
