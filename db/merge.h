#pragma once
// `kvsafe merge OUT IN...`: results databases written by separate jobs (or clusters) combined
// into one. Everything an input holds is copied into OUT once: content-addressed rows (cells by
// id, KV specs by hash, models and experiments by name, prompts by benchmark and index, ...) are
// kept once, and integer ids (experiments, runs, generations, diagnoses) are given new values in
// OUT with every row that refers to them.
//
// Shards, the unit of results: a shard (cell, [begin, end)) done in only one database is copied
// with its rows (generations, perplexity windows, key magnitudes, direction sums); done in both
// with the same answers (every generation's output text and verdict, and the other rows'
// values) it is kept once; done in both with different answers it is a conflict. A shard done
// on one side and not on the other is no conflict: the done one wins (otherwise the one further
// along: failed over running over pending, OUT's on a tie).
//
// Safety: the inputs are only read (each is copied with VACUUM INTO into a scratch folder,
// checked with PRAGMA quick_check, and an older schema is migrated on the copy); every input is
// checked, and every pair of databases compared for conflicts, before OUT is written; then each
// input is merged in one transaction. OUT is written under its writer lock (db/writer_lock.h).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/records.h"

namespace kvsafe::db {

// How a conflicting shard (done in two databases with different answers) is resolved.
enum class Prefer {
  kNone,    // not at all: any conflict leaves OUT unchanged and is reported
  kFirst,   // keep what OUT (or the input merged earlier) has
  kNewest,  // keep the shard whose writing run started later (OUT's on a tie)
};

// "none", "first", "newest"; parse_prefer is the inverse (nullopt for any other text).
std::string_view to_string(Prefer prefer);
std::optional<Prefer> parse_prefer(std::string_view text);

struct MergeOptions {
  Prefer prefer = Prefer::kNone;        // how conflicting shards are resolved
  std::filesystem::path scratch_dir{};  // where the inputs' copies live during the merge; empty: OUT's folder
  std::string holder_description{};     // written into OUT's writer lock file; empty: this process's command line
};

// Where one side of a conflicting shard came from.
struct ShardProvenance {
  std::string database{};     // the file as given: OUT or an input
  std::string merged_from{};  // OUT's side only: the input this merge copied the shard from; empty: OUT had it
  // The run that wrote the shard, in `database` (the latest run started before the shard was
  // committed and not ended before it, preferring one on the shard's worker host); empty when
  // no run matches (a database written without runs rows).
  std::optional<std::int64_t> run_id{};
  std::string run_started_at{};  // ISO-8601 UTC; empty without a run
  std::string slurm_job_id{};    // empty outside SLURM or without a run
  std::string worker{};          // the shard's worker ("rank 3@host"), as recorded
  std::string finished_at{};     // when the shard was committed, ISO-8601 UTC
};

enum class ConflictResolution {
  kUnresolved,    // without --prefer: OUT was not changed
  kKeptExisting,  // OUT's shard kept (--prefer first, or --prefer newest and OUT's is newer)
  kTookIncoming,  // the input's shard and rows replaced OUT's (--prefer newest)
};

struct MergeConflict {
  ShardKey shard{};
  ShardProvenance existing{};  // OUT's side (or the earlier input's, when found before writing)
  ShardProvenance incoming{};  // the input's side
  // Prompt indices (perplexity windows: window indices) whose rows differ: a generation's
  // output text or verdict, a key magnitude, a window's values, or present on one side only.
  std::vector<std::int64_t> differing_prompts{};
  bool direction_sums_differ = false;  // the shard's residual sums (task refusal_direction) differ
  ConflictResolution resolution = ConflictResolution::kUnresolved;
};

// What merging one input did (or, summed, the whole merge).
struct MergeCounts {
  std::int64_t experiments_copied = 0;
  std::int64_t cells_copied = 0;      // cells OUT did not have
  std::int64_t cells_present = 0;     // cells OUT already had
  std::int64_t shards_copied = 0;     // done shards OUT lacked or had not done, copied with their rows
  std::int64_t shards_identical = 0;  // done in both with the same answers: kept once
  std::int64_t shards_not_done = 0;   // the input's shards that are not done (their state is kept when OUT's is behind)
  std::int64_t shards_conflicting = 0;     // done in both with different answers
  std::int64_t shards_replaced = 0;        // of those, replaced by the input's (--prefer newest)
  std::int64_t generations_copied = 0;     // per-prompt answers written into OUT
  std::int64_t generations_identical = 0;  // answers of identical shards, already in OUT
  std::int64_t runs_copied = 0;
  std::int64_t judgements_copied = 0;
  std::int64_t diagnoses_copied = 0;

  MergeCounts& operator+=(const MergeCounts& other);
};

struct MergeInputResult {
  std::string path{};      // the input as given
  int schema_version = 0;  // the input's own version (older ones were migrated on the copy)
  MergeCounts counts{};
};

struct MergeResult {
  std::string out{};                       // OUT as given
  bool merged = false;                     // false: conflicts without --prefer; OUT is unchanged
  std::vector<MergeInputResult> inputs{};  // in the order given (empty when not merged)
  std::vector<MergeConflict> conflicts{};  // every conflicting shard, with its resolution
  // Rows kept as OUT had them although an input differs and that is not a shard conflict: an
  // experiment's grid edited between jobs, other weights recorded under one model name, a
  // diagnosis or a diagnosis role decided differently, a metric.
  std::vector<std::string> notes{};

  MergeCounts total() const;
};

// Merges the inputs into `out` (created when missing), in the order given. Returns what was
// copied, kept and in conflict; with Prefer::kNone and a conflict, OUT is left unchanged and
// result.merged is false. Throws DbError naming the file, and leaves OUT unchanged, when: an
// input is missing, not SQLite, damaged (quick_check), empty (schema version 0) or newer than
// this build; an input is OUT; two databases cut one cell into shards differently, or hold a
// different text for one prompt; another process holds OUT's writer lock. A failure while
// writing (disk full) rolls back that input's transaction; inputs merged before it stay merged.
MergeResult merge_databases(const std::filesystem::path& out, const std::vector<std::filesystem::path>& inputs,
                            const MergeOptions& options = {});

// Lines for the user: each conflict with both sides' provenance and its resolution, then per
// input and in total the cells, shards, generations, runs and judgements copied or identical.
std::string format_merge_result(const MergeResult& result);

// The tables merge_databases copies: every table of the latest schema (tests check this list
// against the schema, so a migration that adds a table must teach the merge about it).
const std::vector<std::string_view>& merged_tables();

}  // namespace kvsafe::db
