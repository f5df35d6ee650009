#pragma once
// Store: the results database as the orchestrator sees it. Rank 0 is the only writer
// (enforced across processes by WriterLock); every finished shard is one transaction, so a
// crash loses at most the shards in flight, never a finished one, never half a shard.
//
// Every method throws DbError (naming the database path) on failure; a failed method
// leaves the database as it was before the call. Not thread-safe: one thread owns a Store.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "db/records.h"
#include "db/status_report.h"

namespace kvsafe::db {

class Connection;
class WriterLock;

struct StoreOptions {
  bool read_only = false;            // open without writing: no create, no migration, no writer lock
  int busy_timeout_ms = 10000;       // how long SQLite waits for another connection's lock before failing
  bool take_writer_lock = true;      // take "<db>.writer.lock" (ignored when read_only); off only in tests/tools
  std::string holder_description{};  // written into the lock file, e.g. "kvsafe run paper.yaml"; empty = argv
};

class Store {
 public:
  // Opens the database at path. Writable: creates parent directories and the file if
  // needed, takes the writer lock, sets WAL + synchronous=NORMAL + foreign_keys, and migrates
  // to the latest schema. Read-only: the file must exist; an older schema is accepted (the
  // tables it lacks read as errors), a newer one is refused. Throws DbError when the file is
  // not SQLite, its schema is newer than this build, or another process holds the lock.
  static std::unique_ptr<Store> open(const std::filesystem::path& path, const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& path() const { return path_; }
  int schema_version();

  // ---- registration (idempotent) ----

  // Inserts the experiment, or updates grid path/sha/text of the one with this name.
  // Returns its id.
  std::int64_t register_experiment(const ExperimentRecord& experiment);
  // Inserts the model, or updates path/sha256/architecture/n_params of the one with this name.
  void register_model(const ModelRecord& model);
  // Inserts the benchmark and its prompts (keyed by (benchmark, prompt_index)); existing
  // prompts are left alone, but one whose text changed is refused (the data set changed
  // under the same index: results would no longer match their prompt). Returns new prompts.
  std::int64_t register_prompts(const std::string& benchmark, const std::string& source,
                                const std::vector<PromptRecord>& prompts);

  // In one transaction: inserts the cells' KV specs, the cells, their shards [begin, end)
  // of shard_size prompts, and links them to the experiment (a cell may belong to several
  // experiments). An existing cell is left as it is, with two exceptions:
  //  - it is linked to this experiment if it was not yet;
  //  - if n_prompts grew (a grid edited to a bigger limit), shards are added for the new
  //    range [old n_prompts, new n_prompts) only, and a done cell becomes running again.
  //    A smaller n_prompts changes nothing (finished results are never dropped).
  // Registering the same cells twice changes nothing; the result counts new vs existing.
  RegisterResult register_cells(std::int64_t experiment_id, const std::vector<CellRecord>& cells,
                                std::int64_t shard_size);

  // ---- shard state machine: pending -> running -> done | (pending again | failed) ----

  // Records which cell plays which diagnosis role in the experiment, in one transaction: the
  // roles given replace every role recorded for their models in this experiment (a model's plan
  // is given whole). The cells must be registered.
  void register_diagnosis_roles(std::int64_t experiment_id, const std::vector<DiagnosisRoleRecord>& roles);

  // Writes a model's diagnosis and its layer profile (diagnoses, pcr_layers) in one
  // transaction, replacing the one recorded for the same (model, cell_id). The cell must be
  // registered (its KV spec is the row's kv_hash). Returns the diagnosis id.
  std::int64_t record_diagnosis(const DiagnosisRecord& diagnosis);

  // pending -> running, attempts + 1, worker recorded. Returns false (and changes nothing)
  // when the shard is not pending. Throws DbError for an unknown shard.
  bool claim_shard(const ShardKey& shard, const std::string& worker);
  // One transaction: inserts the result rows (a (cell, prompt_index) already present is
  // skipped, so committing twice changes nothing), upserts metrics, marks the shard done,
  // and the cell done when all its shards are (running otherwise). Committing a shard that
  // is already done changes nothing. Rows outside [begin, end) or violating a constraint
  // throw DbError and leave the database as before (no half shard).
  void commit_shard(const ShardResult& result);
  // The shard failed: back to pending when attempts < max_attempts, else failed, and its
  // cell failed with the error text. A shard already done is left done.
  void fail_shard(const ShardKey& shard, const std::string& error, int max_attempts);
  // After a crash: running -> pending for every shard (attempts kept); cells with nothing
  // running or done go back to pending. Returns the number of shards requeued.
  std::int64_t requeue_in_flight();
  // `kvsafe run --retry-failed`: failed -> pending for every shard, attempts back to 0; their
  // cells leave the failed state (error cleared). Returns the number of shards requeued.
  std::int64_t requeue_failed();
  // Shards in the given state, ordered by (cell_id, begin).
  std::vector<ShardKey> shards_with_status(ShardStatus status);
  // The cell's status as its shards make it (pending, running, done, failed). Throws DbError for
  // an unknown cell.
  CellStatus cell_status(const std::string& cell_id);
  // Counts of cells and shards per state, and prompts done/total; for one experiment or all.
  Progress progress(std::optional<std::int64_t> experiment_id = std::nullopt);
  // Ids of the cells whose every shard is done.
  std::set<std::string> done_cell_ids();

  // ---- runs ----

  // Records a launch (started now, status "running"). Returns the run id.
  std::int64_t begin_run(const RunRecord& run);
  // A worker loaded a model for this run: updates the models row (sha256, architecture,
  // n_params, chat template; empty fields keep what is stored) and adds the model, as loaded,
  // to runs.models_json once. Throws DbError for an unknown run id.
  void record_run_model(std::int64_t run_id, const ModelRecord& model);
  // Records its end. Throws DbError for an unknown run id.
  void end_run(std::int64_t run_id, int exit_code, const std::string& status);

  StatusReport status_report();

  // The open connection, for db/ modules that add tables beside the store's (judgements.h).
  // Not for code outside db/: the store's transaction rules hold only inside db/.
  Connection& connection() { return *connection_; }

 private:
  Store(std::filesystem::path path, std::unique_ptr<WriterLock> lock, std::unique_ptr<Connection> connection);
  void require_writable(const char* operation) const;
  void refresh_cell_status(const std::string& cell_id);

  std::filesystem::path path_;
  std::unique_ptr<WriterLock> lock_;  // released after the connection closes (member order)
  std::unique_ptr<Connection> connection_;
};

}  // namespace kvsafe::db
