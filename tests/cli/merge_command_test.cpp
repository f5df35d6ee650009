// `kvsafe merge` as users run it: two jobs' databases (written through db::Store) merged into a
// new one; a conflicting shard printed with both runs, OUT left as it was, then resolved with
// --prefer; a damaged input and a bad flag refused.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "db/connection.h"
#include "db/store.h"
#include "tests/cli/cli_process.h"
#include "tests/db/db_test_util.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::testing {
namespace {

namespace fs = std::filesystem;

// A job's database: cells `ids` of 8 prompts in shards of 4, all committed, in one run.
void write_job(const fs::path& path, const std::vector<std::string>& ids, const std::string& slurm_job_id,
               const std::string& answer_to_c0_prompt_1 = "") {
  auto store = db::Store::open(path, {.take_writer_lock = false});
  const std::int64_t experiment = store->register_experiment(db::testing::make_experiment("grid"));
  const std::int64_t run = store->begin_run(
      {.experiment_id = experiment, .command_line = "kvsafe run grid.yaml", .slurm_job_id = slurm_job_id});
  std::vector<db::CellRecord> cells;
  for (const std::string& id : ids) cells.push_back(db::testing::make_cell(id, 8));
  store->register_cells(experiment, cells, 4);
  for (const std::string& id : ids) {
    for (std::int64_t begin = 0; begin < 8; begin += 4) {
      const db::ShardKey shard{.cell_id = id, .begin = begin, .end = begin + 4};
      store->claim_shard(shard, "rank 1@node1");
      db::ShardResult result = db::testing::make_result(shard);
      if (id == "c0" && begin == 0 && !answer_to_c0_prompt_1.empty()) {
        result.generations[1].output_text = answer_to_c0_prompt_1;
      }
      store->commit_shard(result);
    }
  }
  store->end_run(run, 0, "done");
}

std::string bytes_of(const fs::path& path) {
  // NOTE: through rdbuf, not istreambuf_iterator: GCC 12 flags a false null dereference in the
  // latter under -Wnull-dereference (as db/writer_lock.cpp notes).
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

TEST(MergeCommand, TwoJobsMergeIntoANewDatabase) {
  TempDir dir("merge-cli");
  write_job(dir / "a.db", {"c0", "c1"}, "101");
  write_job(dir / "b.db", {"c2"}, "102");
  const fs::path out = dir / "merged/out.db";
  const ProcessResult result =
      run_kvsafe("merge " + out.string() + " " + (dir / "a.db").string() + " " + (dir / "b.db").string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("merged 2 input(s) into " + out.string() +
                            ": cells 3 copied, 0 already there; shards 6 copied, 0 identical, 0 conflicting"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("generations 24 copied, 0 identical; runs 2"), std::string::npos) << result.out;
  auto store = db::Store::open(out, {.read_only = true});
  EXPECT_EQ(store->done_cell_ids(), (std::set<std::string>{"c0", "c1", "c2"}));
}

TEST(MergeCommand, AConflictIsPrintedAndChangesNothingUntilPreferChooses) {
  TempDir dir("merge-cli-conflict");
  write_job(dir / "out.db", {"c0"}, "1111");
  write_job(dir / "b.db", {"c0"}, "2222", "Sure, here is how.");
  const std::string before = bytes_of(dir / "out.db");
  const std::string arguments = "merge " + (dir / "out.db").string() + " " + (dir / "b.db").string();

  const ProcessResult refused = run_kvsafe(arguments);
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_NE(refused.out.find("conflict: shard [0, 4) of cell c0: the answers to prompts 1 differ"), std::string::npos)
      << refused.out;
  EXPECT_NE(refused.out.find((dir / "out.db").string() + ": run 1 started "), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("SLURM job 1111"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find((dir / "b.db").string() + ": run 1 started "), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("SLURM job 2222"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("was not changed"), std::string::npos) << refused.out;
  EXPECT_EQ(bytes_of(dir / "out.db"), before);

  const ProcessResult newest = run_kvsafe(arguments + " --prefer newest");
  ASSERT_EQ(newest.exit_code, 0) << newest.err;
  EXPECT_NE(newest.out.find("took " + (dir / "b.db").string() + "'s"), std::string::npos) << newest.out;
  db::Connection connection(dir / "out.db", db::ConnectionOptions{.read_only = true});
  EXPECT_EQ(connection.query_int64("SELECT COUNT(*) FROM generations WHERE output_text = 'Sure, here is how.'"), 1);
}

TEST(MergeCommand, DamagedInputAndBadFlagsAreRefused) {
  TempDir dir("merge-cli-bad");
  write_job(dir / "out.db", {"c0"}, "1");
  const fs::path garbage = dir / "garbage.db";
  {
    std::ofstream file(garbage, std::ios::binary);
    file << std::string(4096, 'x');
  }
  const std::string before = bytes_of(dir / "out.db");
  const ProcessResult damaged = run_kvsafe("merge " + (dir / "out.db").string() + " " + garbage.string());
  EXPECT_EQ(damaged.exit_code, 1);
  EXPECT_NE(damaged.err.find(garbage.string() + " is not a SQLite database"), std::string::npos) << damaged.err;
  EXPECT_EQ(bytes_of(dir / "out.db"), before);

  EXPECT_EQ(run_kvsafe("merge " + (dir / "out.db").string() + " " + garbage.string() + " --prefer latest").exit_code,
            64);
  EXPECT_EQ(run_kvsafe("merge " + (dir / "out.db").string()).exit_code, 64);
}

}  // namespace
}  // namespace kvsafe::testing
