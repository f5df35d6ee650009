// `kvsafe query` and `kvsafe status` on a real database registered from a real grid.

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_process.h"
#include "tests/cli/test_database.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::testing {
namespace {

namespace fs = std::filesystem;

class QueryStatus : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_ / "quick.db";
    GridDatabase grid = register_grid_file(KVSAFE_SOURCE_DIR "/tests/cli/fixtures/cli_grid.yaml", db_);
    cells_ = grid.cells;
    finish_cell(*grid.store, cells_[0], 4);
    // The second cell's first shard fails for good (one attempt allowed).
    const db::ShardKey key{.cell_id = cells_[1].id, .begin = 0, .end = 4};
    grid.store->claim_shard(key, "test-worker");
    grid.store->fail_shard(key, "CUDA out of memory while decoding", 1);
  }

  TempDir dir_{"query"};
  fs::path db_;
  std::vector<orchestrator::Cell> cells_;
};

TEST_F(QueryStatus, StatusShowsStatesAndFailuresWithTheirErrors) {
  const ProcessResult result = run_kvsafe("status " + db_.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("cli-fixture"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("CUDA out of memory while decoding"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(cells_[1].kv_label), std::string::npos) << result.out;
}

TEST_F(QueryStatus, CsvAndJsonCarryTheRows) {
  const std::string sql = "\"SELECT status, count(*) AS n FROM cells GROUP BY status ORDER BY status\"";
  const ProcessResult csv = run_kvsafe("query " + db_.string() + " " + sql + " --csv");
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out, "status,n\r\ndone,1\r\nfailed,1\r\npending,2\r\n");

  const ProcessResult json = run_kvsafe("query " + db_.string() + " " + sql + " --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto rows = nlohmann::json::parse(json.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["status"], "done");
  EXPECT_EQ(rows[0]["n"], 1);  // an integer, not the text "1"

  const ProcessResult table = run_kvsafe("query " + db_.string() + " " + sql);
  ASSERT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("(3 rows)"), std::string::npos) << table.out;
}

TEST_F(QueryStatus, WritesAreRefusedAndNothingChanges) {
  for (const char* sql : {"DELETE FROM generations", "UPDATE cells SET status = 'done'", "DROP TABLE cells",
                          "SELECT 1; DELETE FROM cells", "ATTACH DATABASE '/tmp/x.db' AS x"}) {
    const ProcessResult result = run_kvsafe("query " + db_.string() + " \"" + sql + "\"");
    EXPECT_EQ(result.exit_code, 1) << sql;
    EXPECT_NE(result.err.find("read-only"), std::string::npos) << sql << ": " << result.err;
  }
  const ProcessResult count = run_kvsafe("query " + db_.string() + " \"SELECT count(*) FROM generations\" --csv");
  EXPECT_EQ(count.out, "count(*)\r\n8\r\n");
}

TEST_F(QueryStatus, QueryAndStatusRunWhileAWriterHoldsTheLock) {
  auto writer = db::Store::open(db_, {});  // this process now holds the writer lock
  EXPECT_EQ(run_kvsafe("status " + db_.string()).exit_code, 0);
  EXPECT_EQ(run_kvsafe("query " + db_.string() + " \"SELECT 1\"").exit_code, 0);
}

TEST(QueryErrors, MissingDatabaseIsNamedAndNotCreated) {
  const fs::path missing = fs::temp_directory_path() / "kvsafe_no_such.db";
  fs::remove(missing);
  for (const std::string& command : {"query " + missing.string() + " \"SELECT 1\"", "status " + missing.string()}) {
    const ProcessResult result = run_kvsafe(command);
    EXPECT_EQ(result.exit_code, 1) << command;
    EXPECT_NE(result.err.find(missing.string()), std::string::npos) << result.err;
    EXPECT_FALSE(fs::exists(missing));
  }
}

TEST(QueryErrors, SyntaxErrorShowsSqliteMessage) {
  const fs::path db = fs::temp_directory_path() / ("kvsafe_syntax_" + std::to_string(::getpid()) + ".db");
  db::Store::open(db, {}).reset();
  const ProcessResult result = run_kvsafe("query " + db.string() + " \"SELEC nothing\"");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("syntax error"), std::string::npos) << result.err;
  fs::remove(db);
  fs::remove(fs::path(db.string() + ".writer.lock"));
}

}  // namespace
}  // namespace kvsafe::testing
