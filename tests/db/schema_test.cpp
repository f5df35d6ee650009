#include "db/schema.h"

#include <gtest/gtest.h>

#include <fstream>

#include "db/connection.h"
#include "db/db_error.h"
#include "db/store.h"
#include "tests/db/db_test_util.h"

namespace kvsafe::db {
namespace {

using testing::TempDir;

// Tables each schema version adds; every one must exist after migrating to the latest.
const std::vector<std::vector<std::string>> kTablesByVersion = {
    {"experiments", "experiment_cells", "models", "kv_specs", "benchmarks", "prompts", "cells", "shards", "generations",
     "metrics", "runs"},
    {"ppl_windows", "pcr_layers", "pcr_channels", "diagnoses"},
    {"judgements"},
    {},  // v4 adds columns only (checked in KeepsDataAndReachesLatest)
    {"diagnosis_roles"},
    {"key_magnitudes"},
    {"direction_sums"},
    {},  // v8 adds runs.slurm_json only
    {"ifeval_verdicts"},
};

bool has_table(Connection& connection, const std::string& table) {
  Statement statement(connection, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1");
  statement.bind(1, table);
  return statement.step();
}

TEST(Schema, MigrationsAreConsecutiveFromOne) {
  const auto& migrations = schema_migrations();
  ASSERT_FALSE(migrations.empty());
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, static_cast<int>(i) + 1);
    EXPECT_FALSE(migrations[i].steps.empty());
  }
  EXPECT_EQ(latest_schema_version(), static_cast<int>(migrations.size()));
  EXPECT_EQ(kTablesByVersion.size(), migrations.size()) << "update kTablesByVersion with the new migration";
}

TEST(Schema, OpenCreatesLatestSchemaWithWalAndForeignKeys) {
  TempDir dir;
  const auto path = dir / "nested/dirs/results.db";
  auto store = Store::open(path, StoreOptions{.take_writer_lock = false});
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(store->schema_version(), latest_schema_version());

  Connection connection(path, ConnectionOptions{.read_only = true});
  EXPECT_EQ(schema_version(connection), latest_schema_version());
  for (const auto& tables : kTablesByVersion) {
    for (const auto& table : tables) EXPECT_TRUE(has_table(connection, table)) << table;
  }
  Statement journal(connection, "PRAGMA journal_mode");
  ASSERT_TRUE(journal.step());
  EXPECT_EQ(journal.column_text(0), "wal");
}

TEST(Schema, MigratingTwiceChangesNothing) {
  TempDir dir;
  Connection connection(dir / "a.db", ConnectionOptions{});
  EXPECT_EQ(migrate(connection), latest_schema_version());
  EXPECT_EQ(migrate(connection), latest_schema_version());
}

// Builds a database at `version` with the migrations of that time and some data, then opens
// it with the current code: it must reach the latest version and keep every row.
class MigrateFromOlderVersion : public ::testing::TestWithParam<int> {};

TEST_P(MigrateFromOlderVersion, KeepsDataAndReachesLatest) {
  const int old_version = GetParam();
  TempDir dir;
  const auto path = dir / "old.db";
  {
    Connection connection(path, ConnectionOptions{});
    connection.exec("PRAGMA foreign_keys = ON");
    EXPECT_EQ(migrate(connection, old_version), old_version);
    EXPECT_EQ(schema_version(connection), old_version);
    if (old_version >= 1) {
      connection.exec(
          "INSERT INTO experiments(name, grid_path, grid_sha256, grid_text, created_at, updated_at) "
          "VALUES ('old', 'old.yaml', 'abc', 'grid', 'then', 'then');"
          "INSERT INTO kv_specs VALUES ('kvhash-int4', '{}', 'int4', 4.25);"
          "INSERT INTO cells(id, model, kv_hash, task, benchmark, canonical_json, n_prompts, status, created_at) "
          "VALUES ('c1', 'm', 'kvhash-int4', 'refusal', 'advbench', '{}', 4, 'done', 'then');"
          "INSERT INTO experiment_cells VALUES (1, 'c1');"
          "INSERT INTO shards(cell_id, begin, end, status) VALUES ('c1', 0, 4, 'done');"
          "INSERT INTO generations(cell_id, prompt_index, prompt_id, prompt_sha256, rendered_sha256, output_text, "
          "prompt_tokens, output_tokens, refused, seconds) VALUES ('c1', 0, 'p0', 's', 'r', 'no', 3, 4, 1, 0.1);");
    }
    for (int v = old_version; v < latest_schema_version(); ++v) {
      for (const auto& table : kTablesByVersion[static_cast<std::size_t>(v)]) {
        EXPECT_FALSE(has_table(connection, table)) << table << " exists before its migration";
      }
    }
  }
  auto store = Store::open(path, StoreOptions{.take_writer_lock = false});
  EXPECT_EQ(store->schema_version(), latest_schema_version());
  if (old_version >= 1) {
    EXPECT_EQ(store->done_cell_ids(), std::set<std::string>{"c1"});
    const Progress progress = store->progress(std::nullopt);
    EXPECT_EQ(progress.cells.done, 1);
    EXPECT_EQ(progress.prompts_done, 4);
  }
  store.reset();
  if (old_version >= 1) {
    EXPECT_EQ(testing::count_rows(path, "generations"), 1);
    // v3: an old generation can be judged again; the row refers to it.
    Connection writer(path, ConnectionOptions{});
    writer.exec("PRAGMA foreign_keys = ON");
    writer.exec(
        "INSERT INTO judgements(generation_id, judge_key, judge_label, judge_json, parsed, refused, raw_output, "
        "created_at) VALUES (1, 'k', 'keyword:default:substring', '{}', 1, 0, 'no', 'now')");
    EXPECT_EQ(testing::count_rows(path, "judgements"), 1);
    // v4: the old generation has no divergence values (NULL, never 0), and the new columns exist.
    Statement divergence(writer,
                         "SELECT first_token_id IS NULL, reference_first_token_id IS NULL, first_token_kl IS NULL, "
                         "kv_mse_key IS NULL, kv_mse_value IS NULL FROM generations");
    ASSERT_TRUE(divergence.step());
    for (int column = 0; column < 5; ++column) EXPECT_EQ(divergence.column_int64(column), 1) << column;
    writer.exec(
        "INSERT INTO runs(started_at, command_line, hosts, ranks) VALUES ('now', 'kvsafe run', '[]', 1);"
        "UPDATE models SET chat_template = 'x' WHERE 0");
    Statement models(writer, "SELECT models_json FROM runs");
    ASSERT_TRUE(models.step());
    EXPECT_EQ(models.column_text(0), "[]");
  }
  Connection connection(path, ConnectionOptions{.read_only = true});
  for (const auto& tables : kTablesByVersion) {
    for (const auto& table : tables) EXPECT_TRUE(has_table(connection, table)) << table;
  }
}

INSTANTIATE_TEST_SUITE_P(EachOlderVersion, MigrateFromOlderVersion, ::testing::Range(0, latest_schema_version()));

TEST(Schema, JudgementsKeepVerdictsConsistent) {
  TempDir dir;
  Connection connection(dir / "j.db", ConnectionOptions{});
  connection.exec("PRAGMA foreign_keys = ON");
  migrate(connection);
  connection.exec(
      "INSERT INTO kv_specs VALUES ('kv', '{}', 'int4', 4.25);"
      "INSERT INTO cells(id, model, kv_hash, task, benchmark, canonical_json, n_prompts, created_at) "
      "VALUES ('c1', 'm', 'kv', 'refusal', 'advbench', '{}', 1, 'then');"
      "INSERT INTO generations(cell_id, prompt_index, prompt_id, prompt_sha256, rendered_sha256, output_text, "
      "prompt_tokens, output_tokens, seconds) VALUES ('c1', 0, 'p0', 's', 'r', 'out', 3, 4, 0.1);");
  const auto insert = [&](const std::string& generation, const std::string& key, const std::string& parsed,
                          const std::string& refused) {
    connection.exec(
        "INSERT INTO judgements(generation_id, judge_key, judge_label, judge_json, parsed, refused, "
        "raw_output, created_at) VALUES (" +
        generation + ", '" + key + "', 'l', '{}', " + parsed + ", " + refused + ", 'raw', 'now')");
  };
  insert("1", "a", "1", "1");
  insert("1", "b", "0", "NULL");                         // unparsed: no verdict
  EXPECT_THROW(insert("1", "a", "1", "0"), DbError);     // same judge twice on one generation
  EXPECT_THROW(insert("1", "c", "0", "1"), DbError);     // a verdict without a parse
  EXPECT_THROW(insert("1", "d", "1", "NULL"), DbError);  // parsed without a verdict
  EXPECT_THROW(insert("99", "e", "1", "1"), DbError);    // no such generation
  EXPECT_EQ(connection.query_int64("SELECT COUNT(*) FROM judgements"), 2);
}

TEST(Schema, NewerDatabaseIsRefused) {
  TempDir dir;
  const auto path = dir / "future.db";
  {
    Connection connection(path, ConnectionOptions{});
    migrate(connection);
    connection.exec("PRAGMA user_version = " + std::to_string(latest_schema_version() + 5));
  }
  const std::string expected = path.string() + " has schema version " + std::to_string(latest_schema_version() + 5) +
                               ", this kvsafe knows up to " + std::to_string(latest_schema_version()) +
                               "; upgrade kvsafe";
  for (bool read_only : {false, true}) {
    try {
      Store::open(path, StoreOptions{.read_only = read_only, .take_writer_lock = false});
      FAIL() << "a newer schema was accepted";
    } catch (const DbError& error) {
      EXPECT_EQ(std::string(error.what()), expected);
    }
  }
}

TEST(Schema, NotADatabaseIsRefusedNamingThePath) {
  TempDir dir;
  const auto path = dir / "notes.txt";
  {
    std::ofstream out(path);
    out << "this is a plain text file, long enough to hold a header that SQLite would look at..........\n";
  }
  for (bool read_only : {false, true}) {
    try {
      Store::open(path, StoreOptions{.read_only = read_only, .take_writer_lock = false});
      FAIL() << "a text file was accepted as a database";
    } catch (const DbError& error) {
      EXPECT_NE(std::string(error.what()).find(path.string() + " is not a SQLite database"), std::string::npos)
          << error.what();
    }
  }
}

TEST(Schema, ReadOnlyOpenOfMissingFileIsRefusedAndCreatesNothing) {
  TempDir dir;
  const auto path = dir / "missing.db";
  try {
    Store::open(path, StoreOptions{.read_only = true});
    FAIL() << "a missing file was opened";
  } catch (const DbError& error) {
    EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace kvsafe::db
