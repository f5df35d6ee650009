// `kvsafe diagnose` resumed after the layer ablation under mpirun: the dependent cells that a
// 3-rank run derives from the stored ablation are exactly those a single in-process run
// derives, with the same ids, once each, and the MPI workers rebuild them from the JSON the
// scheduler sends (they are not in the workers' expansion of the grid).
// Also: the refusal direction's class sums from MPI workers equal an in-process run's.

#include <cmath>
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

// The refusal direction's class sums travel from MPI workers to rank 0 (protocol key "dir") and
// land as an in-process run stores them: the same rows, the same float32 values.
TEST(DiagnoseMpi, DirectionSumsFromMpiWorkersEqualAnInProcessRun) {
  ScratchDir dir;
  const auto grid = refusal_direction_grid(dir.path(), "grid.yaml");
  const auto single_db = dir / "single.db", mpi_db = dir / "mpi.db";
  const auto single =
      run_to_end(kvsafe_binary() + " run " + grid.string() + " --db " + single_db.string(), "", dir / "single_err.txt");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const auto mpi = run_to_end(mpirun(3) + kvsafe_binary() + " run " + grid.string() + " --db " + mpi_db.string(), "",
                              dir / "mpi_err.txt");
  ASSERT_EQ(mpi.exit_code, 0) << mpi.err;
  EXPECT_EQ(count(mpi_db, "SELECT ranks FROM runs ORDER BY id DESC LIMIT 1"), 3);

  const std::string keys = "SELECT cell_id, shard_begin, layer, harmful, prompts FROM direction_sums";
  EXPECT_EQ(rows(mpi_db, keys), rows(single_db, keys));
  EXPECT_EQ(rows(mpi_db, keys).size(), 80U);
  // Each prompt runs alone (batch 1) on one CPU thread per rank or two in process: the sums may
  // differ in the last bits of float32, not more.
  SQLite::Database a(single_db.string(), SQLite::OPEN_READONLY), b(mpi_db.string(), SQLite::OPEN_READONLY);
  const std::string sums = "SELECT sum_f32 FROM direction_sums ORDER BY cell_id, shard_begin, layer, harmful";
  SQLite::Statement qa(a, sums), qb(b, sums);
  std::size_t compared = 0;
  while (qa.executeStep() && qb.executeStep()) {
    const SQLite::Column ca = qa.getColumn(0), cb = qb.getColumn(0);
    ASSERT_EQ(ca.getBytes(), cb.getBytes());
    const auto* fa = static_cast<const float*>(ca.getBlob());
    const auto* fb = static_cast<const float*>(cb.getBlob());
    for (int i = 0; i < ca.getBytes() / 4; ++i) {
      EXPECT_NEAR(fa[i], fb[i], 1e-4 * (1 + std::abs(fa[i]))) << "row " << compared << " value " << i;
    }
    ++compared;
  }
  EXPECT_EQ(compared, 80U);
}

}  // namespace
}  // namespace kvsafe::testing
