#include "db/judgements.h"

#include "common/sha256.h"
#include "db/connection.h"
#include "db/store.h"
#include "db/store_internal.h"

namespace kvsafe::db {
namespace {

std::optional<bool> optional_bool(const Statement& statement, int column) {
  if (statement.column_is_null(column)) return std::nullopt;
  return statement.column_int64(column) != 0;
}

}  // namespace

JudgeIdentity judge_identity(std::string label, std::string json) {
  JudgeIdentity identity;
  identity.key = sha256_hex(json);
  identity.label = std::move(label);
  identity.json = std::move(json);
  return identity;
}

std::vector<StoredGeneration> read_unjudged_generations(Store& store, const std::string& judge_key,
                                                        std::int64_t after_id, std::int64_t limit) {
  KVSAFE_DB_CHECK(store.path(), limit >= 1, "read_unjudged_generations: limit must be >= 1, got ", limit);
  std::vector<StoredGeneration> out;
  auto select = store.connection().cached(
      "SELECT g.id, g.cell_id, g.prompt_index, p.text, p.harmful, g.output_text, g.refused "
      "FROM generations g JOIN cells c ON c.id = g.cell_id "
      // NOTE: by id, not index: a cell's index is not the benchmark's (limit/sample/subset draw
      // from it, and a sampled cell has several indices per prompt).
      "LEFT JOIN prompts p ON p.benchmark = c.benchmark AND p.prompt_id = g.prompt_id "
      "WHERE g.id > ?1 AND NOT EXISTS "
      "(SELECT 1 FROM judgements j WHERE j.generation_id = g.id AND j.judge_key = ?2) "
      "ORDER BY g.id LIMIT ?3");
  select->bind(1, after_id).bind(2, judge_key).bind(3, limit);
  while (select->step()) {
    StoredGeneration row;
    row.id = select->column_int64(0);
    row.cell_id = select->column_text(1);
    row.prompt_index = select->column_int64(2);
    if (!select->column_is_null(3)) row.prompt_text = select->column_text(3);
    row.harmful = optional_bool(*select, 4);
    row.output_text = select->column_text(5);
    row.run_refused = optional_bool(*select, 6);
    out.push_back(std::move(row));
  }
  return out;
}

std::int64_t count_unjudged_generations(Store& store, const std::string& judge_key) {
  auto count = store.connection().cached(
      "SELECT COUNT(*) FROM generations g WHERE NOT EXISTS "
      "(SELECT 1 FROM judgements j WHERE j.generation_id = g.id AND j.judge_key = ?1)");
  count->bind(1, judge_key);
  return count->step() ? count->column_int64(0) : 0;
}

std::int64_t insert_judgements(Store& store, const JudgeIdentity& judge, std::span<const JudgementRow> rows) {
  Connection& connection = store.connection();
  KVSAFE_DB_CHECK(store.path(), !connection.read_only(), "insert_judgements: the store was opened read-only");
  KVSAFE_DB_CHECK(store.path(), !judge.key.empty() && !judge.json.empty(),
                  "insert_judgements: the judge has no key or spec JSON");
  std::int64_t inserted = 0;
  Transaction transaction(connection);
  for (const JudgementRow& row : rows) {
    auto insert = connection.cached(
        "INSERT INTO judgements(generation_id, judge_key, judge_label, judge_json, parsed, refused, raw_output, "
        "detail_json, seconds, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, " KVSAFE_SQL_NOW
        ") ON CONFLICT(generation_id, judge_key) DO NOTHING");
    insert->bind(1, row.generation_id).bind(2, judge.key).bind(3, judge.label).bind(4, judge.json);
    insert->bind(5, row.refused.has_value() ? 1 : 0);
    if (row.refused.has_value()) {
      insert->bind(6, *row.refused ? 1 : 0);
    } else {
      insert->bind_null(6);
    }
    insert->bind(7, row.raw_output).bind(8, row.detail_json.empty() ? std::string("{}") : row.detail_json);
    insert->bind(9, row.seconds).run();
    inserted += connection.changes();
  }
  transaction.commit();
  return inserted;
}

std::vector<StoredJudge> list_stored_judges(Store& store) {
  std::vector<StoredJudge> out;
  auto select = store.connection().cached(
      "SELECT judge_key, MIN(judge_label), MIN(judge_json), COUNT(*), SUM(parsed = 0), SUM(refused = 1) "
      "FROM judgements GROUP BY judge_key ORDER BY MIN(id)");
  while (select->step()) {
    StoredJudge judge;
    judge.identity.key = select->column_text(0);
    judge.identity.label = select->column_text(1);
    judge.identity.json = select->column_text(2);
    judge.rows = select->column_int64(3);
    judge.unparsed = select->column_int64(4);
    judge.refused = select->column_optional_int64(5).value_or(0);
    out.push_back(std::move(judge));
  }
  return out;
}

StoredJudge find_stored_judge(Store& store, std::string_view name) {
  const std::vector<StoredJudge> judges = list_stored_judges(store);
  std::vector<const StoredJudge*> by_label;
  std::vector<const StoredJudge*> by_key;
  for (const StoredJudge& judge : judges) {
    if (judge.identity.label == name) by_label.push_back(&judge);
    if (name.size() >= 6 && judge.identity.key.starts_with(name)) by_key.push_back(&judge);
  }
  if (by_label.size() == 1) return *by_label.front();
  if (by_label.empty() && by_key.size() == 1) return *by_key.front();
  std::string known;
  for (const StoredJudge& judge : judges) {
    known += "\n  " + judge.identity.key.substr(0, 12) + "  " + judge.identity.label + "  (" +
             std::to_string(judge.rows) + " rows)";
  }
  if (known.empty()) known = " none";
  const bool ambiguous = by_label.size() > 1 || (by_label.empty() && by_key.size() > 1);
  throw DbError(kvsafe::detail::concat(store.path().string(), ": ", ambiguous ? "several judges match '" : "no judge '",
                                       name, ambiguous ? "'; use a key prefix" : "'",
                                       " (a label, or a key prefix of >= 6 hex digits). Stored judges:", known));
}

std::vector<StoredVerdict> stored_verdicts(Store& store, const std::string& judge_key) {
  std::vector<StoredVerdict> out;
  auto select = store.connection().cached(
      "SELECT generation_id, refused FROM judgements WHERE judge_key = ?1 ORDER BY generation_id");
  select->bind(1, judge_key);
  while (select->step()) {
    out.push_back({.generation_id = select->column_int64(0), .refused = optional_bool(*select, 1)});
  }
  return out;
}

std::vector<StoredVerdict> run_verdicts(Store& store) {
  std::vector<StoredVerdict> out;
  auto select = store.connection().cached("SELECT id, refused FROM generations ORDER BY id");
  while (select->step()) {
    out.push_back({.generation_id = select->column_int64(0), .refused = optional_bool(*select, 1)});
  }
  return out;
}

}  // namespace kvsafe::db
