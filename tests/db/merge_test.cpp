// `kvsafe merge`'s library side (db/merge.h) on real databases written through db::Store: two
// halves of a grid merge into what one run writes; identical shards are kept once; a conflicting
// shard is reported with both provenances and resolved only when asked; bad inputs change nothing.
#include "db/merge.h"

#include <gtest/gtest.h>

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "db/connection.h"
#include "db/db_error.h"
#include "db/judgements.h"
#include "db/schema.h"
#include "db/store.h"
#include "tests/db/db_test_util.h"

namespace kvsafe::db {
namespace {

namespace fs = std::filesystem;
using testing::make_cell;
using testing::make_experiment;
using testing::make_result;
using testing::TempDir;

constexpr std::int64_t kShardSize = 4;
constexpr char kModel[] = "smollm2-135m";

// A grid of 4 cells of 8 prompts (shards of 4): two refusal cells at int4, one at int8, and one
// whose shards commit perplexity windows, key magnitudes and direction sums instead of answers.
std::vector<CellRecord> grid_cells() {
  return {make_cell("c0", 8, "int4"), make_cell("c1", 8, "int4"), make_cell("c2", 8, "int8"),
          make_cell("c3", 8, "int2")};
}

std::vector<CellRecord> cells_named(const std::set<std::string>& ids) {
  std::vector<CellRecord> cells;
  for (const CellRecord& cell : grid_cells()) {
    if (ids.contains(cell.id)) cells.push_back(cell);
  }
  return cells;
}

ShardResult shard_result(const ShardKey& shard) {
  if (shard.cell_id == "c2") {  // scored like an ifeval cell: one verdict row per answer, one unscored
    ShardResult result = make_result(shard);
    for (std::int64_t i = shard.begin; i < shard.end; ++i) {
      result.ifeval_verdicts.push_back({.prompt_index = i,
                                        .instruction_index = 0,
                                        .instruction_id = "punctuation:no_comma",
                                        .strict = i % 2 == 0,
                                        .loose = true});
      result.ifeval_verdicts.push_back({.prompt_index = i,
                                        .instruction_index = 1,
                                        .instruction_id = "keywords:letter_frequency",
                                        .unscored = "kwarg 'letter' is not a-z"});
    }
    return result;
  }
  if (shard.cell_id != "c3") return make_result(shard);
  ShardResult result{.shard = shard};
  for (std::int64_t i = shard.begin; i < shard.end; ++i) {
    result.ppl_windows.push_back(
        PplWindowRow{.window_index = i, .begin_token = i * 512, .n_tokens = 2048, .nll_sum = 4000.25 + i});
    result.key_magnitudes.push_back(
        KeyMagnitudeRow{.prompt_index = i, .layer = 0, .tokens = 12, .max_abs = {1.5f, 0.25f + i}});
  }
  result.direction_sums.push_back(DirectionSumRow{.layer = 1, .harmful = true, .prompts = 4, .sum = {0.5f, -2.0f}});
  return result;
}

struct Part {
  std::set<std::string> registered;  // cells registered
  std::set<std::string> finished;    // of those, the cells whose shards are committed
  std::string slurm_job_id;          // the run's
  std::map<std::pair<std::string, std::int64_t>, std::string> answers{};  // (cell, prompt) -> another answer
};

// One job's database, as `kvsafe run` and `kvsafe judge` write it: experiment, model, prompts,
// a run, cells and their finished shards, a judge's verdict on prompt 0 of each finished cell,
// and (with cell c0) a diagnosis with its layers, a channel, and the diagnosis roles.
void write_database(const fs::path& path, const Part& part) {
  auto store = Store::open(path, StoreOptions{.take_writer_lock = false});
  const std::int64_t experiment = store->register_experiment(make_experiment("grid"));
  store->register_model(
      {.name = kModel, .path = "/models/smollm2.gguf", .sha256 = "abc123", .architecture = "llama", .n_params = 135});
  std::vector<PromptRecord> prompts;
  for (std::int64_t i = 0; i < 8; ++i) {
    prompts.push_back({.prompt_index = i, .prompt_id = "p" + std::to_string(i), .text = "prompt " + std::to_string(i)});
  }
  store->register_prompts("advbench", "advbench.csv", prompts);
  const std::int64_t run = store->begin_run({.experiment_id = experiment,
                                             .command_line = "kvsafe run grid.yaml",
                                             .hosts = {"node1"},
                                             .ranks = 1,
                                             .slurm_job_id = part.slurm_job_id});
  store->register_cells(experiment, cells_named(part.registered), kShardSize);
  for (const CellRecord& cell : cells_named(part.finished)) {
    for (std::int64_t begin = 0; begin < cell.n_prompts; begin += kShardSize) {
      const ShardKey shard{.cell_id = cell.id, .begin = begin, .end = begin + kShardSize};
      ASSERT_TRUE(store->claim_shard(shard, "rank 1@node1"));
      ShardResult result = shard_result(shard);
      for (GenerationRow& generation : result.generations) {
        const auto answer = part.answers.find({cell.id, generation.prompt_index});
        if (answer != part.answers.end()) generation.output_text = answer->second;
      }
      if (cell.id == "c0" && begin == 0) result.metrics.push_back({.name = "refusal_rate", .value = 0.5, .n = 4});
      store->commit_shard(result);
    }
  }
  store->end_run(run, 0, "done");
  const JudgeIdentity judge = judge_identity("keyword:default:substring", "{\"kind\":\"keyword\"}");
  std::vector<JudgementRow> verdicts;
  for (const StoredGeneration& generation : read_unjudged_generations(*store, judge.key, 0, 1000)) {
    if (generation.prompt_index == 0) {
      verdicts.push_back({.generation_id = generation.id, .refused = true, .raw_output = "cannot"});
    }
  }
  insert_judgements(*store, judge, verdicts);
  if (part.registered.contains("c0")) {
    const std::int64_t diagnosis = store->record_diagnosis(
        {.model = kModel,
         .cell_id = "c0",
         .mode = "outlier_as_safety",
         .pcr = 0.5,
         .layers = {{.layer = 0, .flip_rate = 0.1, .n = 4}, {.layer = 1, .flip_rate = 0.6, .n = 4, .critical = true}}});
    store->connection().exec("INSERT INTO pcr_channels(diagnosis_id, layer, channel, max_abs_k, outlier) VALUES (" +
                             std::to_string(diagnosis) + ", 1, 7, 12.5, 1)");
    store->register_diagnosis_roles(
        experiment,
        {{.model = kModel, .task = "baseline", .arm = "calibration", .cell_id = "c0", .detail_json = "{}"}});
  }
}

// Each table's content without surrogate ids and times (a reference to an id is followed to
// the row's natural key), one text per row, sorted.
using Content = std::map<std::string, std::vector<std::string>>;

const std::map<std::string, std::string>& content_queries() {
  static const std::map<std::string, std::string> queries = {
      {"experiments", "SELECT name, grid_path, grid_sha256, grid_text FROM experiments"},
      {"experiment_cells",
       "SELECT e.name, c.cell_id FROM experiment_cells c JOIN experiments e ON e.id = c.experiment_id"},
      {"models", "SELECT name, path, sha256, architecture, n_params, chat_template, chat_template_sha256 FROM models"},
      {"kv_specs", "SELECT * FROM kv_specs"},
      {"benchmarks", "SELECT name, source FROM benchmarks"},
      {"prompts", "SELECT * FROM prompts"},
      {"cells",
       "SELECT id, model, kv_hash, task, benchmark, canonical_json, n_prompts, status, attempts, error, "
       "started_at IS NULL, finished_at IS NULL FROM cells"},
      {"shards",
       "SELECT cell_id, begin, end, status, attempts, error, worker, started_at IS NULL, finished_at IS NULL "
       "FROM shards"},
      {"generations",
       "SELECT cell_id, prompt_index, prompt_id, prompt_sha256, rendered_sha256, output_text, prompt_tokens, "
       "output_tokens, refused, judge_json, seconds, first_token_id, reference_first_token_id, first_token_kl, "
       "kv_mse_key, kv_mse_value FROM generations"},
      {"metrics", "SELECT cell_id, name, value, ci_low, ci_high, n FROM metrics"},
      {"ppl_windows", "SELECT cell_id, window_index, begin_token, n_tokens, nll_sum FROM ppl_windows"},
      {"key_magnitudes", "SELECT * FROM key_magnitudes"},
      {"direction_sums", "SELECT cell_id, shard_begin, layer, harmful, prompts, hex(sum_f32) FROM direction_sums"},
      {"ifeval_verdicts", "SELECT * FROM ifeval_verdicts"},
      {"judgements",
       "SELECT g.cell_id, g.prompt_index, j.judge_key, j.judge_label, j.judge_json, j.parsed, j.refused, "
       "j.raw_output, j.detail_json, j.seconds FROM judgements j JOIN generations g ON g.id = j.generation_id"},
      {"diagnoses",
       "SELECT cell_id, model, kv_hash, mode, pcr, scores_json, thresholds_json, recommended_spec_json FROM diagnoses"},
      {"pcr_layers",
       "SELECT d.model, d.cell_id, l.layer, l.flip_rate, l.n, l.critical, l.flip_per_tensor, l.flip_per_channel "
       "FROM pcr_layers l JOIN diagnoses d ON d.id = l.diagnosis_id"},
      {"pcr_channels",
       "SELECT d.model, d.cell_id, c.layer, c.head, c.channel, c.max_abs_k, c.outlier FROM pcr_channels c "
       "JOIN diagnoses d ON d.id = c.diagnosis_id"},
      {"diagnosis_roles",
       "SELECT e.name, r.model, r.task, r.arm, r.cell_id, r.detail_json FROM diagnosis_roles r "
       "JOIN experiments e ON e.id = r.experiment_id"},
      {"runs",
       "SELECT e.name, r.command_line, r.hosts, r.ranks, r.slurm_job_id, r.git_commit, r.versions_json, r.exit_code, "
       "r.status, r.models_json, r.slurm_json FROM runs r LEFT JOIN experiments e ON e.id = r.experiment_id"},
  };
  return queries;
}

Content read_content(const fs::path& path) {
  Connection connection(path, ConnectionOptions{.read_only = true});
  Content content;
  for (const auto& [table, sql] : content_queries()) {
    Statement select(connection, sql);
    std::vector<std::string>& rows = content[table];
    while (select.step()) {
      std::string row;
      for (int column = 0; column < sqlite3_column_count(select.handle()); ++column) {
        row += (column == 0 ? "" : " | ") + (select.column_is_null(column) ? "NULL" : select.column_text(column));
      }
      rows.push_back(row);
    }
    std::sort(rows.begin(), rows.end());
  }
  return content;
}

std::string file_bytes(const fs::path& path) {
  // NOTE: through rdbuf, not istreambuf_iterator: GCC 12 flags a false null dereference in the
  // latter under -Wnull-dereference (as db/writer_lock.cpp notes).
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// No scratch folder left beside OUT.
bool scratch_left(const fs::path& folder) {
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().filename().string().rfind(".kvsafe-merge-", 0) == 0) return true;
  }
  return false;
}

std::string generation_text(const fs::path& path, const std::string& cell, std::int64_t prompt) {
  Connection connection(path, ConnectionOptions{.read_only = true});
  Statement select(connection, "SELECT output_text FROM generations WHERE cell_id = ?1 AND prompt_index = ?2");
  select.bind(1, cell).bind(2, prompt);
  return select.step() ? select.column_text(0) : "";
}

class MergeTest : public ::testing::Test {
 protected:
  // Every table but runs (each job records its own launch).
  static void expect_same_results(const Content& actual, const Content& expected) {
    for (const auto& [table, rows] : expected) {
      if (table == "runs") continue;
      EXPECT_EQ(actual.at(table), rows) << table;
    }
  }

  TempDir dir_{"merge"};
};

TEST(MergeTables, EveryTableOfTheSchemaIsMergedAndCompared) {
  TempDir dir("merge-tables");
  Connection connection(dir / "schema.db", ConnectionOptions{});
  migrate(connection);
  std::set<std::string> schema_tables;
  Statement select(connection, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
  while (select.step()) schema_tables.insert(select.column_text(0));
  const std::set<std::string> merged(merged_tables().begin(), merged_tables().end());
  EXPECT_EQ(merged, schema_tables);
  for (const std::string& table : schema_tables) EXPECT_TRUE(content_queries().contains(table)) << table;
}

TEST_F(MergeTest, DisjointHalvesMergeIntoWhatOneRunWrites) {
  write_database(dir_ / "all.db",
                 {.registered = {"c0", "c1", "c2", "c3"}, .finished = {"c0", "c1", "c2", "c3"}, .slurm_job_id = "100"});
  write_database(dir_ / "a.db", {.registered = {"c0", "c1"}, .finished = {"c0", "c1"}, .slurm_job_id = "101"});
  write_database(dir_ / "b.db", {.registered = {"c2", "c3"}, .finished = {"c2", "c3"}, .slurm_job_id = "102"});

  const MergeResult result = merge_databases(dir_ / "out.db", {dir_ / "a.db", dir_ / "b.db"});
  ASSERT_TRUE(result.merged);
  EXPECT_TRUE(result.conflicts.empty());
  EXPECT_TRUE(result.notes.empty()) << result.notes.front();
  const MergeCounts total = result.total();
  EXPECT_EQ(total.cells_copied, 4);
  EXPECT_EQ(total.shards_copied, 8);
  EXPECT_EQ(total.shards_identical, 0);
  EXPECT_EQ(total.generations_copied, 24);  // c3 commits windows, not answers
  EXPECT_EQ(total.runs_copied, 2);
  EXPECT_EQ(total.judgements_copied, 3);
  EXPECT_EQ(total.diagnoses_copied, 1);
  EXPECT_FALSE(scratch_left(dir_.path()));

  const Content merged = read_content(dir_ / "out.db");
  expect_same_results(merged, read_content(dir_ / "all.db"));
  std::vector<std::string> runs = read_content(dir_ / "a.db").at("runs");
  const std::vector<std::string> b_runs = read_content(dir_ / "b.db").at("runs");
  runs.insert(runs.end(), b_runs.begin(), b_runs.end());
  std::sort(runs.begin(), runs.end());
  EXPECT_EQ(merged.at("runs"), runs);

  auto store = Store::open(dir_ / "out.db", StoreOptions{.read_only = true});
  EXPECT_EQ(store->done_cell_ids(), (std::set<std::string>{"c0", "c1", "c2", "c3"}));
  EXPECT_EQ(store->progress().prompts_done, 32);
}

// Both jobs registered the whole grid and each ran its half: a shard done on one side and
// pending on the other is no conflict, the done one wins; OUT exists (a's own file).
TEST_F(MergeTest, DoneShardsWinOverPendingOnesWhenMergingIntoAnExistingDatabase) {
  const std::set<std::string> all = {"c0", "c1", "c2", "c3"};
  write_database(dir_ / "all.db", {.registered = all, .finished = all, .slurm_job_id = "100"});
  write_database(dir_ / "a.db", {.registered = all, .finished = {"c0", "c1"}, .slurm_job_id = "101"});
  write_database(dir_ / "b.db", {.registered = all, .finished = {"c2", "c3"}, .slurm_job_id = "102"});

  const MergeResult result = merge_databases(dir_ / "a.db", {dir_ / "b.db"});
  ASSERT_TRUE(result.merged);
  EXPECT_TRUE(result.conflicts.empty());
  EXPECT_EQ(result.total().cells_present, 4);
  EXPECT_EQ(result.total().shards_copied, 4);
  EXPECT_EQ(result.total().shards_not_done, 4);
  expect_same_results(read_content(dir_ / "a.db"), read_content(dir_ / "all.db"));
}

TEST_F(MergeTest, MergingTheSameInputAgainChangesNothing) {
  write_database(dir_ / "a.db", {.registered = {"c0", "c1", "c3"}, .finished = {"c0", "c3"}, .slurm_job_id = "7"});
  const fs::path out = dir_ / "out.db";
  ASSERT_TRUE(merge_databases(out, {dir_ / "a.db"}).merged);
  const Content once = read_content(out);

  const MergeResult again = merge_databases(out, {dir_ / "a.db", dir_ / "a.db"});
  ASSERT_TRUE(again.merged);
  const MergeCounts total = again.total();
  EXPECT_EQ(total.cells_copied, 0);
  EXPECT_EQ(total.cells_present, 6);
  EXPECT_EQ(total.shards_copied, 0);
  EXPECT_EQ(total.shards_identical, 8);
  EXPECT_EQ(total.generations_copied, 0);
  EXPECT_EQ(total.generations_identical, 16);
  EXPECT_EQ(total.runs_copied, 0);
  EXPECT_EQ(total.judgements_copied, 0);
  EXPECT_EQ(total.diagnoses_copied, 0);
  EXPECT_EQ(read_content(out), once);
}

// A grid edited to a bigger limit between jobs: the second job's cell has 12 prompts; OUT's cell
// grows to them (as Store::register_cells extends one) and is done once every shard is.
TEST_F(MergeTest, ACellGrownBetweenJobsIsExtended) {
  write_database(dir_ / "out.db", {.registered = {"c0"}, .finished = {"c0"}, .slurm_job_id = "1"});
  {
    auto store = Store::open(dir_ / "grown.db", StoreOptions{.take_writer_lock = false});
    store->register_cells(store->register_experiment(make_experiment("grid")), {make_cell("c0", 12, "int4")},
                          kShardSize);
    for (const ShardKey& shard : store->shards_with_status(ShardStatus::kPending)) {
      store->claim_shard(shard, "rank 1@node2");
      store->commit_shard(make_result(shard));
    }
  }
  const MergeResult result = merge_databases(dir_ / "out.db", {dir_ / "grown.db"});
  ASSERT_TRUE(result.merged);
  EXPECT_EQ(result.total().shards_identical, 2);
  EXPECT_EQ(result.total().shards_copied, 1);
  auto store = Store::open(dir_ / "out.db", StoreOptions{.read_only = true});
  EXPECT_EQ(store->done_cell_ids(), std::set<std::string>{"c0"});
  EXPECT_EQ(store->progress().prompts_done, 12);
  EXPECT_EQ(testing::count_rows(dir_ / "out.db", "cells WHERE n_prompts = 12"), 1);
}

class MergeConflictTest : public MergeTest {
 protected:
  void SetUp() override {
    // The same cell run by two jobs; the second (started later) answered prompt 1 otherwise.
    write_database(first_, {.registered = {"c0", "c1"}, .finished = {"c0"}, .slurm_job_id = "1111"});
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    write_database(second_, {.registered = {"c0", "c2"},
                             .finished = {"c0", "c2"},
                             .slurm_job_id = "2222",
                             .answers = {{{"c0", 1}, "Sure, here is how."}}});
  }
  // OUT: a copy of the first job's database.
  fs::path fresh_out(const std::string& name) {
    const fs::path out = dir_ / name;
    fs::copy_file(first_, out);
    return out;
  }

  fs::path first_ = dir_ / "first.db";
  fs::path second_ = dir_ / "second.db";
};

TEST_F(MergeConflictTest, IsReportedWithBothProvenancesAndOutIsUnchanged) {
  const fs::path out = fresh_out("out.db");
  const std::string before = file_bytes(out);
  const MergeResult result = merge_databases(out, {second_});
  EXPECT_FALSE(result.merged);
  ASSERT_EQ(result.conflicts.size(), 1u);
  const MergeConflict& conflict = result.conflicts[0];
  EXPECT_EQ(conflict.shard, (ShardKey{.cell_id = "c0", .begin = 0, .end = 4}));
  EXPECT_EQ(conflict.differing_prompts, std::vector<std::int64_t>{1});
  EXPECT_FALSE(conflict.direction_sums_differ);
  EXPECT_EQ(conflict.resolution, ConflictResolution::kUnresolved);
  EXPECT_EQ(conflict.existing.database, out.string());
  EXPECT_EQ(conflict.existing.slurm_job_id, "1111");
  EXPECT_EQ(conflict.existing.run_id, 1);
  EXPECT_EQ(conflict.existing.worker, "rank 1@node1");
  EXPECT_EQ(conflict.incoming.database, second_.string());
  EXPECT_EQ(conflict.incoming.slurm_job_id, "2222");
  EXPECT_LT(conflict.existing.run_started_at, conflict.incoming.run_started_at);

  const std::string text = format_merge_result(result);
  EXPECT_NE(text.find("conflict: shard [0, 4) of cell c0: the answers to prompts 1 differ"), std::string::npos) << text;
  EXPECT_NE(text.find(out.string() + ": run 1 started "), std::string::npos) << text;
  EXPECT_NE(text.find("SLURM job 1111"), std::string::npos) << text;
  EXPECT_NE(text.find(second_.string() + ": run 1 started "), std::string::npos) << text;
  EXPECT_NE(text.find("SLURM job 2222"), std::string::npos) << text;
  EXPECT_NE(text.find("was not changed"), std::string::npos) << text;
  EXPECT_EQ(file_bytes(out), before);
  EXPECT_FALSE(scratch_left(dir_.path()));
}

TEST_F(MergeConflictTest, AnOlderOutIsNotMigratedWhenTheMergeIsRefused) {
  // OUT at schema 7 (before runs.slurm_json): the refused merge must not open it for writing.
  const fs::path out = fresh_out("old-out.db");
  {
    Connection connection(out, ConnectionOptions{});
    connection.exec(
        "PRAGMA journal_mode = DELETE; DROP TABLE ifeval_verdicts; ALTER TABLE runs DROP COLUMN slurm_json; "
        "PRAGMA user_version = 7");
  }
  const std::string before = file_bytes(out);
  const MergeResult result = merge_databases(out, {second_});
  EXPECT_FALSE(result.merged);
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].existing.database, out.string());
  EXPECT_EQ(file_bytes(out), before);
  Connection connection(out, ConnectionOptions{.read_only = true});
  EXPECT_EQ(schema_version(connection), 7);
}

TEST_F(MergeConflictTest, BetweenTwoInputsLeavesANewOutUncreated) {
  const fs::path out = dir_ / "new.db";
  const MergeResult result = merge_databases(out, {first_, second_});
  EXPECT_FALSE(result.merged);
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].existing.database, first_.string());
  EXPECT_EQ(result.conflicts[0].incoming.database, second_.string());
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(MergeConflictTest, PreferFirstKeepsWhatOutHas) {
  const fs::path out = fresh_out("out.db");
  const MergeResult result = merge_databases(out, {second_}, {.prefer = Prefer::kFirst});
  ASSERT_TRUE(result.merged);
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].resolution, ConflictResolution::kKeptExisting);
  EXPECT_EQ(result.total().shards_conflicting, 1);
  EXPECT_EQ(result.total().shards_replaced, 0);
  EXPECT_EQ(result.total().shards_identical, 1);  // c0's second shard
  EXPECT_EQ(result.total().shards_copied, 2);     // c2
  EXPECT_EQ(generation_text(out, "c0", 1), generation_text(first_, "c0", 1));
  EXPECT_EQ(generation_text(out, "c2", 1), generation_text(second_, "c2", 1));
  auto store = Store::open(out, StoreOptions{.read_only = true});
  EXPECT_EQ(store->done_cell_ids(), (std::set<std::string>{"c0", "c2"}));
}

TEST_F(MergeConflictTest, PreferNewestTakesTheShardOfTheLaterRun) {
  const fs::path out = fresh_out("out.db");
  const MergeResult result = merge_databases(out, {second_}, {.prefer = Prefer::kNewest});
  ASSERT_TRUE(result.merged);
  ASSERT_EQ(result.conflicts.size(), 1u);
  EXPECT_EQ(result.conflicts[0].resolution, ConflictResolution::kTookIncoming);
  EXPECT_EQ(result.total().shards_replaced, 1);
  EXPECT_EQ(generation_text(out, "c0", 1), "Sure, here is how.");
  EXPECT_NE(format_merge_result(result).find("took " + second_.string() + "'s"), std::string::npos);
  // The replaced shard's rows are the second job's whole: its verdict on prompt 0 came along.
  const Content content = read_content(out);
  EXPECT_EQ(content.at("generations"), read_content(second_).at("generations"));
  EXPECT_EQ(content.at("judgements").size(), 2u);  // c0 and c2, one verdict each

  // The other way round, OUT holds the later run's shard: newest keeps it.
  const fs::path reverse = dir_ / "reverse.db";
  fs::copy_file(second_, reverse);
  const MergeResult kept = merge_databases(reverse, {first_}, {.prefer = Prefer::kNewest});
  ASSERT_EQ(kept.conflicts.size(), 1u);
  EXPECT_EQ(kept.conflicts[0].resolution, ConflictResolution::kKeptExisting);
  EXPECT_EQ(generation_text(reverse, "c0", 1), "Sure, here is how.");
}

// Both jobs merged into a new OUT in one call: OUT's side of the conflict is the first input's
// shard, named as such, with that job's run.
TEST_F(MergeConflictTest, WithAnEarlierInputOfTheSameMergeNamesThatInput) {
  const fs::path out = dir_ / "new.db";
  const MergeResult result = merge_databases(out, {first_, second_}, {.prefer = Prefer::kNewest});
  ASSERT_TRUE(result.merged);
  ASSERT_EQ(result.conflicts.size(), 1u);
  const MergeConflict& conflict = result.conflicts[0];
  EXPECT_EQ(conflict.existing.database, out.string());
  EXPECT_EQ(conflict.existing.merged_from, first_.string());
  EXPECT_EQ(conflict.existing.slurm_job_id, "1111");
  EXPECT_EQ(conflict.incoming.slurm_job_id, "2222");
  EXPECT_EQ(conflict.resolution, ConflictResolution::kTookIncoming);
  EXPECT_EQ(generation_text(out, "c0", 1), "Sure, here is how.");
  EXPECT_NE(format_merge_result(result).find(out.string() + " (merged from " + first_.string() + "): run 1"),
            std::string::npos)
      << format_merge_result(result);
}

class MergeBadInputTest : public MergeTest {
 protected:
  void SetUp() override {
    write_database(good_, {.registered = {"c0", "c1"}, .finished = {"c0"}, .slurm_job_id = "1"});
    write_database(out_, {.registered = {"c2"}, .finished = {"c2"}, .slurm_job_id = "2"});
    before_ = file_bytes(out_);
  }
  // merge_databases throws DbError naming `named`, and OUT is byte for byte as it was.
  void expect_refused(const std::vector<fs::path>& inputs, const fs::path& named, const std::string& why) {
    try {
      merge_databases(out_, inputs);
      ADD_FAILURE() << "merged " << named;
    } catch (const DbError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(named.string()), std::string::npos) << message;
      EXPECT_NE(message.find(why), std::string::npos) << message;
    }
    EXPECT_EQ(file_bytes(out_), before_);
    EXPECT_FALSE(scratch_left(dir_.path()));
  }

  fs::path good_ = dir_ / "good.db";
  fs::path out_ = dir_ / "out.db";
  std::string before_;
};

TEST_F(MergeBadInputTest, GarbageChangesNothing) {
  const fs::path garbage = dir_ / "garbage.db";
  {
    std::ofstream file(garbage, std::ios::binary);
    for (int i = 0; i < 8192; ++i) file.put(static_cast<char>((i * 7919 + 13) % 251));
  }
  expect_refused({good_, garbage}, garbage, "is not a SQLite database");
}

TEST_F(MergeBadInputTest, TruncatedDatabaseChangesNothing) {
  const fs::path truncated = dir_ / "truncated.db";
  const std::string bytes = file_bytes(good_);
  ASSERT_GT(bytes.size(), 8u * 4096u);
  {
    std::ofstream file(truncated, std::ios::binary);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  expect_refused({good_, truncated}, truncated, "nothing was merged");
}

TEST_F(MergeBadInputTest, NewerSchemaIsRefused) {
  const fs::path newer = dir_ / "newer.db";
  fs::copy_file(good_, newer);
  {
    Connection connection(newer, ConnectionOptions{});
    connection.exec("PRAGMA user_version = " + std::to_string(latest_schema_version() + 1));
  }
  expect_refused({newer}, newer, "upgrade kvsafe");
}

TEST_F(MergeBadInputTest, OutAmongTheInputsIsRefused) {
  expect_refused({good_, out_}, out_, "is the output database");
}

TEST_F(MergeBadInputTest, AMissingInputIsRefused) {
  expect_refused({good_, dir_ / "missing.db"}, dir_ / "missing.db", "does not exist");
}

TEST_F(MergeBadInputTest, ShardsCutDifferentlyAreRefused) {
  const fs::path other = dir_ / "other.db";
  {
    auto store = Store::open(other, StoreOptions{.take_writer_lock = false});
    store->register_cells(store->register_experiment(make_experiment("grid")),
                          {make_cell("c0", 8, "int4"), make_cell("c2", 8, "int8")}, 8);
  }
  expect_refused({other}, other, "cut into shards differently");
  // Between two inputs too (OUT lacks the cell).
  expect_refused({good_, other}, other, "execution.shard_size");
}

TEST_F(MergeBadInputTest, AnotherPromptTextUnderOneIndexIsRefused) {
  const fs::path other = dir_ / "other.db";
  {
    auto store = Store::open(other, StoreOptions{.take_writer_lock = false});
    store->register_prompts("advbench", "advbench.csv", {{.prompt_index = 3, .prompt_id = "p3", .text = "edited"}});
  }
  expect_refused({other}, other, "the data set changed under the same index");
}

TEST_F(MergeBadInputTest, AWriterHoldingOutIsNamed) {
  auto writer = Store::open(out_, StoreOptions{.holder_description = "kvsafe run grid.yaml"});
  try {
    merge_databases(out_, {good_});
    ADD_FAILURE() << "merged into a database a writer holds";
  } catch (const DbError& error) {
    EXPECT_NE(std::string(error.what()).find("is locked for writing by"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("kvsafe run grid.yaml"), std::string::npos) << error.what();
  }
}

// A schema-3 database (before first-token columns, diagnosis roles, key magnitudes, direction
// sums and runs.slurm_json) is merged from a migrated copy; the file itself is not touched.
TEST_F(MergeTest, OlderSchemaIsMigratedOnACopy) {
  const fs::path old = dir_ / "v3.db";
  {
    Connection connection(old, ConnectionOptions{});
    connection.exec("PRAGMA foreign_keys = ON");
    ASSERT_EQ(migrate(connection, 3), 3);
    connection.exec(
        "INSERT INTO experiments(name, grid_path, grid_sha256, grid_text, created_at, updated_at) "
        "VALUES ('old', 'old.yaml', 'abc', 'grid', 'then', 'then');"
        "INSERT INTO kv_specs VALUES ('kvhash-int4', '{}', 'int4', 4.25);"
        "INSERT INTO cells(id, model, kv_hash, task, benchmark, canonical_json, n_prompts, status, created_at) "
        "VALUES ('old-cell', 'm', 'kvhash-int4', 'refusal', 'advbench', '{}', 2, 'done', 'then');"
        "INSERT INTO experiment_cells VALUES (1, 'old-cell');"
        "INSERT INTO shards(cell_id, begin, end, status, finished_at) VALUES ('old-cell', 0, 2, 'done', '2026-01-02');"
        "INSERT INTO runs(experiment_id, started_at, ended_at, command_line, hosts, ranks, slurm_job_id) "
        "VALUES (1, '2026-01-01', '2026-01-03', 'kvsafe run old.yaml', '[\"n1\"]', 1, '42');"
        "INSERT INTO generations(cell_id, prompt_index, prompt_id, prompt_sha256, rendered_sha256, output_text, "
        "prompt_tokens, output_tokens, refused, seconds) VALUES ('old-cell', 0, 'p0', 's', 'r', 'no', 3, 4, 1, 0.1), "
        "('old-cell', 1, 'p1', 's', 'r', 'yes', 3, 4, 0, 0.1);");
  }
  const std::string old_bytes = file_bytes(old);
  write_database(dir_ / "out.db", {.registered = {"c0"}, .finished = {"c0"}, .slurm_job_id = "9"});

  const MergeResult result = merge_databases(dir_ / "out.db", {old});
  ASSERT_TRUE(result.merged);
  ASSERT_EQ(result.inputs.size(), 1u);
  EXPECT_EQ(result.inputs[0].schema_version, 3);
  EXPECT_EQ(result.total().cells_copied, 1);
  EXPECT_EQ(result.total().generations_copied, 2);
  EXPECT_EQ(result.total().runs_copied, 1);
  EXPECT_NE(format_merge_result(result).find("(schema version 3, migrated on a copy)"), std::string::npos);
  EXPECT_EQ(file_bytes(old), old_bytes);
  {
    Connection connection(old, ConnectionOptions{.read_only = true});
    EXPECT_EQ(schema_version(connection), 3);
  }
  auto store = Store::open(dir_ / "out.db", StoreOptions{.read_only = true});
  EXPECT_EQ(store->done_cell_ids(), (std::set<std::string>{"c0", "old-cell"}));
  const Content content = read_content(dir_ / "out.db");
  EXPECT_NE(std::find(content.at("runs").begin(), content.at("runs").end(),
                      "old | kvsafe run old.yaml | [\"n1\"] | 1 | 42 |  | {} | NULL | running | [] | {}"),
            content.at("runs").end());
}

TEST(MergePrefer, NamesRoundTrip) {
  for (const Prefer prefer : {Prefer::kNone, Prefer::kFirst, Prefer::kNewest}) {
    EXPECT_EQ(parse_prefer(to_string(prefer)), prefer);
  }
  EXPECT_FALSE(parse_prefer("latest").has_value());
}

}  // namespace
}  // namespace kvsafe::db
