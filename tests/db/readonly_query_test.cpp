#include "db/readonly_query.h"

#include <gtest/gtest.h>

#include "db/db_error.h"
#include "db/schema.h"
#include "db/store.h"
#include "tests/db/db_test_util.h"

namespace kvsafe::db {
namespace {

using testing::count_rows;
using testing::make_cell;
using testing::make_experiment;
using testing::TempDir;

class ReadOnlyQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::open(path_, StoreOptions{.take_writer_lock = false});
    const std::int64_t experiment = store->register_experiment(make_experiment("paper"));
    store->register_cells(experiment, {make_cell("c1", 4), make_cell("c2", 8)}, 4);
    ASSERT_TRUE(store->claim_shard(ShardKey{"c1", 0, 4}, "w"));
    store->commit_shard(testing::make_result(ShardKey{"c1", 0, 4}));
  }

  // Expects the SQL to be refused as a write, and the database to be unchanged.
  void expect_refused(const std::string& sql) {
    SCOPED_TRACE(sql);
    try {
      run_readonly_query(path_, sql);
      ADD_FAILURE() << "a writing statement was accepted";
    } catch (const DbError& error) {
      EXPECT_NE(std::string(error.what()).find("kvsafe query is read-only: the statement would modify the database"),
                std::string::npos)
          << error.what();
    }
    EXPECT_EQ(count_rows(path_, "cells"), 2);
    EXPECT_EQ(count_rows(path_, "generations"), 4);
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_ / "query.db";
};

TEST_F(ReadOnlyQueryTest, SelectReturnsTypedRows) {
  const QueryResult result = run_readonly_query(
      path_, "SELECT id, n_prompts, n_prompts / 8.0 AS fraction, error, x'00ff' AS b FROM cells ORDER BY id");
  EXPECT_EQ(result.columns, (std::vector<std::string>{"id", "n_prompts", "fraction", "error", "b"}));
  ASSERT_EQ(result.rows.size(), 2u);
  EXPECT_EQ(std::get<std::string>(result.rows[0][0]), "c1");
  EXPECT_EQ(std::get<std::int64_t>(result.rows[0][1]), 4);
  EXPECT_DOUBLE_EQ(std::get<double>(result.rows[1][2]), 1.0);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(result.rows[0][3]));
  EXPECT_EQ(std::get<std::string>(result.rows[0][4]), "x'00ff'");
  EXPECT_EQ(query_value_to_string(result.rows[0][1]), "4");
  EXPECT_EQ(query_value_to_string(result.rows[0][3]), "");
}

TEST_F(ReadOnlyQueryTest, BigBlobIsSummarized) {
  const QueryResult result = run_readonly_query(path_, "SELECT zeroblob(100)");
  EXPECT_EQ(std::get<std::string>(result.rows.at(0).at(0)), "<blob 100 bytes>");
}

TEST_F(ReadOnlyQueryTest, SeveralStatementsReturnTheLastOnesRows) {
  const QueryResult result =
      run_readonly_query(path_,
                         "SELECT 1; -- a comment\n SELECT status, COUNT(*) FROM shards GROUP BY status "
                         "ORDER BY status;  ");
  EXPECT_EQ(result.columns, (std::vector<std::string>{"status", "COUNT(*)"}));
  ASSERT_EQ(result.rows.size(), 2u);
  EXPECT_EQ(std::get<std::string>(result.rows[0][0]), "done");
  EXPECT_EQ(std::get<std::int64_t>(result.rows[1][1]), 2);
}

TEST_F(ReadOnlyQueryTest, ReadingPragmasAreAllowed) {
  EXPECT_EQ(std::get<std::int64_t>(run_readonly_query(path_, "PRAGMA user_version").rows.at(0).at(0)),
            latest_schema_version());
  EXPECT_FALSE(run_readonly_query(path_, "PRAGMA table_info(cells)").rows.empty());
}

TEST_F(ReadOnlyQueryTest, WritesAreRefusedBeforeRunning) {
  expect_refused(
      "INSERT INTO experiments(name, grid_path, grid_sha256, grid_text, created_at, updated_at) "
      "VALUES ('x', '', '', '', '', '')");
  expect_refused("UPDATE cells SET status = 'done'");
  expect_refused("DELETE FROM generations");
  expect_refused("DROP TABLE generations");
  expect_refused("CREATE TABLE evil(x)");
  expect_refused("CREATE INDEX evil ON cells(model)");
  expect_refused("ALTER TABLE cells ADD COLUMN evil TEXT");
  expect_refused("ATTACH DATABASE '" + (dir_ / "other.db").string() + "' AS other");
  expect_refused("PRAGMA user_version = 99");
  expect_refused("PRAGMA query_only = OFF");
  expect_refused("PRAGMA journal_mode = DELETE");
  expect_refused("REPLACE INTO kv_specs VALUES ('h', '{}', 'l', 4)");
  expect_refused("VACUUM");
  expect_refused("VACUUM INTO '" + (dir_ / "copy.db").string() + "'");
  // A write hidden after a read: nothing runs at all.
  expect_refused("SELECT 1; DELETE FROM cells");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "other.db"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "copy.db"));
  EXPECT_EQ(std::get<std::int64_t>(run_readonly_query(path_, "PRAGMA user_version").rows.at(0).at(0)),
            latest_schema_version());
}

TEST_F(ReadOnlyQueryTest, SyntaxErrorShowsSqliteMessageAndSql) {
  try {
    run_readonly_query(path_, "SELEC id FROM cells");
    FAIL() << "bad SQL was accepted";
  } catch (const DbError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("syntax error"), std::string::npos) << message;
    EXPECT_NE(message.find("SELEC id FROM cells"), std::string::npos) << message;
    EXPECT_NE(message.find(path_.string()), std::string::npos) << message;
  }
  EXPECT_THROW(run_readonly_query(path_, "SELECT * FROM no_such_table"), DbError);
  EXPECT_THROW(run_readonly_query(path_, "   "), DbError);
}

TEST(ReadOnlyQuery, MissingFileIsNamedAndNeverCreated) {
  TempDir dir;
  const auto path = dir / "absent.db";
  try {
    run_readonly_query(path, "SELECT 1");
    FAIL() << "a missing database was queried";
  } catch (const DbError& error) {
    EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace kvsafe::db
