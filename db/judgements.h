#pragma once
// Judgements: verdicts of a judge re-run on stored generations (`kvsafe judge`), one row per
// (generation, judge) in the `judgements` table (schema v3). Judging is separable from
// generation: rows are added beside generations.refused (the run's own judge), never
// replacing it, and a judge is identified by its canonical spec JSON (judge_key = sha256 of
// it), so running the same judge again skips what it already judged (resume) and a different
// judge adds its own rows.
//
//   auto store = Store::open("results.db");                 // writer lock, migrated to v3
//   JudgeIdentity judge = judge_identity("keyword:default:substring", spec_json);
//   for (auto batch = read_unjudged_generations(*store, judge.key, 0, 64); !batch.empty(); ...)
//     insert_judgements(*store, judge, rows);               // one transaction per batch
//
// Every function throws DbError naming the database on failure; a failed insert leaves the
// database as it was (no half batch).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvsafe::db {

class Store;

struct JudgeIdentity {
  std::string key{};    // hex SHA-256 of `json`
  std::string label{};  // short, for people: "keyword:default:substring", "model:x.gguf:wildguard"
  std::string json{};   // the judge's canonical spec
};

// The identity of a judge with this label and canonical spec JSON.
JudgeIdentity judge_identity(std::string label, std::string json);

// A stored generation with what a judge needs.
struct StoredGeneration {
  std::int64_t id = 0;                       // generations.id
  std::string cell_id{};                     // its cell
  std::int64_t prompt_index = 0;             // position in the cell's benchmark
  std::optional<std::string> prompt_text{};  // the prompt (prompts table); empty when not registered
  std::optional<bool> harmful{};             // the prompt's label; empty when not registered
  std::string output_text{};                 // the answer being judged
  std::optional<bool> run_refused{};         // generations.refused: the run's own verdict
};

// Up to `limit` generations with id > after_id that judge_key has not judged yet, ordered by
// id. Page with after_id = the last id of the previous page.
std::vector<StoredGeneration> read_unjudged_generations(Store& store, const std::string& judge_key,
                                                        std::int64_t after_id, std::int64_t limit);

// Generations judge_key has not judged yet (for progress).
std::int64_t count_unjudged_generations(Store& store, const std::string& judge_key);

struct JudgementRow {
  std::int64_t generation_id = 0;  // generations.id
  std::optional<bool> refused{};   // the verdict; empty = the judge's output did not parse
  std::string raw_output{};        // the judge's output as produced (keyword judge: the matched marker)
  std::string detail_json{};       // judge details (parse result, categories, ...); empty = "{}"
  double seconds = 0;              // judge time spent on this row
};

// Inserts the rows in one transaction; a (generation, judge) already judged is skipped.
// Returns the rows inserted. Throws DbError for a read-only store or an unknown generation
// (nothing inserted then).
std::int64_t insert_judgements(Store& store, const JudgeIdentity& judge, std::span<const JudgementRow> rows);

// A judge with rows in the database.
struct StoredJudge {
  JudgeIdentity identity{};
  std::int64_t rows = 0;      // judgements stored
  std::int64_t unparsed = 0;  // of which without a verdict
  std::int64_t refused = 0;   // of which refused
};

// Every judge with rows, by first judgement time.
std::vector<StoredJudge> list_stored_judges(Store& store);

// The judge named by `name`: its exact label when one judge has it, else a judge_key prefix of
// at least 6 hex digits. Throws DbError listing the stored judges when none or several match.
StoredJudge find_stored_judge(Store& store, std::string_view name);

struct StoredVerdict {
  std::int64_t generation_id = 0;
  std::optional<bool> refused{};  // empty: unparsed
};

// Every verdict of judge_key, ordered by generation id.
std::vector<StoredVerdict> stored_verdicts(Store& store, const std::string& judge_key);
// The run's own verdicts (generations.refused, NULL = none), ordered by generation id.
std::vector<StoredVerdict> run_verdicts(Store& store);

}  // namespace kvsafe::db
