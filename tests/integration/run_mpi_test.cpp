// `kvsafe run` under mpirun: the same rows whatever the rank count, a throwing cell retried
// on another worker then failed, and a rank killed mid-run followed by a resume that runs
// exactly the missing shards.
#include "tests/integration/run_harness.h"

namespace kvsafe::testing {
namespace {

// The in-process run's rows: what every rank count must reproduce.
const std::vector<GenerationKey>& reference_rows() {
  static const std::vector<GenerationKey> rows = [] {
    const auto dir = std::filesystem::temp_directory_path() / ("kvsafe_run_reference_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto done = run_to_end(run_command(dir / "reference.db"), "", dir / "err.txt");
    EXPECT_EQ(done.exit_code, 0) << done.err;
    auto out = generation_rows(dir / "reference.db");
    std::filesystem::remove_all(dir);
    return out;
  }();
  return rows;
}

class RunMpi : public ::testing::TestWithParam<int> {};

TEST_P(RunMpi, SameRowsAsInProcess) {
  const int ranks = GetParam();
  ASSERT_EQ(reference_rows().size(), static_cast<std::size_t>(kGenerations));
  ScratchDir dir;
  const auto db = dir / "mpi.db";
  const auto done = run_to_end(mpirun(ranks) + run_command(db), "", dir / "err.txt");
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(generation_rows(db), reference_rows());
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'done'"), kShards);
  EXPECT_EQ(count(db, "SELECT ranks FROM runs"), ranks);
  std::cerr << ranks << " rank(s): " << done.seconds << " s\n";
}

INSTANTIATE_TEST_SUITE_P(Ranks, RunMpi, ::testing::Values(1, 2, 3, 4));

TEST(RunMpiFaults, ThrowingCellIsRetriedElsewhereThenFailedWhileOthersFinish) {
  ScratchDir dir;
  const auto db = dir / "throw.db";
  const auto done = run_to_end(mpirun(3) + run_command(db), "KVSAFE_FAULT=throw:kv=int4-ptok-asym", dir / "err.txt");
  EXPECT_EQ(done.exit_code, 1) << done.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM cells WHERE status = 'done'"), 2) << done.err;
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM cells JOIN kv_specs ON kv_specs.hash = cells.kv_hash WHERE status = 'failed' "
                  "AND label = 'int4-ptok-asym' AND error LIKE '%KVSAFE_FAULT: injected failure%'"),
            1);
  // retries: 1 -> two attempts, on two different workers (rank 1 and rank 2).
  EXPECT_EQ(count(db, "SELECT max(attempts) FROM shards WHERE status = 'failed'"), 2);
  EXPECT_NE(done.err.find("failed on rank"), std::string::npos) << done.err;
  EXPECT_NE(done.err.find("will retry"), std::string::npos) << done.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM runs WHERE exit_code = 1 AND status = 'failed'"), 1);
}

TEST(RunMpiFaults, KilledRankAbortsTheJobAndRerunCompletesExactlyTheMissingShards) {
  ScratchDir dir;
  const auto db = dir / "sigkill.db";
  const auto crashed =
      run_to_end(mpirun(3) + run_command(db), "KVSAFE_FAULT=sigkill:rank=2:after=1,delay:ms=150", dir / "err1.txt");
  EXPECT_NE(crashed.exit_code, 0) << crashed.err;
  const auto done_before = count(db, "SELECT count(*) FROM shards WHERE status = 'done'");
  EXPECT_LT(done_before, kShards);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), 2 * done_before) << "never half a shard";
  const auto max_id_before = count(db, "SELECT COALESCE(max(id), 0) FROM generations");

  const auto rerun = run_to_end(mpirun(2) + run_command(db), "", dir / "err2.txt");
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_NE(rerun.err.find(std::to_string(kShards - done_before) + " shard(s) committed"), std::string::npos)
      << rerun.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations);
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM (SELECT cell_id, prompt_index FROM generations GROUP BY 1, 2 "
                  "HAVING count(*) > 1)"),
            0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations WHERE id <= " + std::to_string(max_id_before)), 2 * done_before)
      << "the rows from before the crash are kept, not rewritten";
  EXPECT_EQ(generation_rows(db), reference_rows());
}

TEST(RunMpiFaults, Sigusr1ThroughMpirunDrainsThenResumeCompletes) {
  ScratchDir dir;
  const auto db = dir / "usr1.db";
  {
    // NOTE: mpirun kills its job on SIGTERM but forwards SIGUSR1 to every rank; workers
    // ignore it and rank 0 drains (SLURM: --signal=USR1@T).
    Child child(mpirun(3) + run_command(db), "KVSAFE_FAULT=delay:ms=500", dir / "err1.txt");
    ASSERT_TRUE(wait_for_count(db, "SELECT count(*) FROM shards WHERE status = 'done'", 2, std::chrono::seconds(40)));
    child.signal(SIGUSR1);
    ASSERT_EQ(child.wait(std::chrono::seconds(30)), kExitInterrupted) << child.err();
    EXPECT_NE(child.err().find("stop signal: no new shards"), std::string::npos) << child.err();
  }
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'running'"), 0) << "drained";
  const auto done_before = count(db, "SELECT count(*) FROM shards WHERE status = 'done'");
  EXPECT_LT(done_before, kShards);
  const auto resumed = run_to_end(mpirun(2) + run_command(db), "", dir / "err2.txt");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find(std::to_string(kShards - done_before) + " shard(s) committed"), std::string::npos)
      << resumed.err;
  EXPECT_EQ(generation_rows(db), reference_rows());
}

TEST(RunMpiFaults, HungWorkerTimesOutItsShardGoesElsewhereAndTheJobEnds) {
  ScratchDir dir;
  const auto db = dir / "hang.db";
  // worker_timeout_s: 15 in this grid; rank 1 hangs before its second shard.
  const auto done =
      run_to_end(mpirun(3) + run_command(db, "stories_hang.yaml"), "KVSAFE_FAULT=hang:rank=1:after=1", dir / "err.txt");
  EXPECT_EQ(done.exit_code, 0) << "every shard was committed; the hung rank was aborted\n" << done.err;
  EXPECT_NE(done.err.find("rank 1@"), std::string::npos);
  EXPECT_NE(done.err.find("counted as hung"), std::string::npos) << done.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'done'"), kShards);
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE attempts = 2"), 1);
  EXPECT_EQ(generation_rows(db), reference_rows());
}

}  // namespace
}  // namespace kvsafe::testing
