#pragma once
// run_grid: the whole of `kvsafe run` below the command line. It chooses how to run --
// in process (one scheduler, one worker thread) or as MPI ranks (launched by mpirun/srun:
// rank 0 schedules and writes the database, ranks >= 1 run worker loops) -- sets up,
// runs the one Scheduler, and records the run's provenance. docs/run.md describes it.
//
// Rank 0 reads the grid file and broadcasts its text, so every rank expands the same
// cells with the same ids. Threads: each worker gets max(1, cores / workers on its node)
// intra-op threads (docs/run.md, "Threads").
//
// Throws kvsafe::Error on a bad grid or database (rank 0 under MPI logs it and aborts the
// job instead, since the workers would wait forever).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/environment.h"
#include "common/exit_codes.h"
#include "orchestrator/scheduler.h"

namespace kvsafe::runner {

struct RunExitCodes {
  int ok = kExitOk;                    // every shard committed
  int failed = kExitFailure;           // a cell failed, or shards were left without a worker
  int interrupted = kExitInterrupted;  // a stop signal: requeue the job and run again to resume
};

struct RunGridOptions {
  std::filesystem::path grid_path{};  // the grid YAML
  std::filesystem::path db_path{};    // empty: results/<grid name>.db
  bool fresh = false;                 // move an existing database aside first (docs/run.md)
  bool retry_failed = false;          // failed shards back to pending, attempts from 0 (Store::requeue_failed)
  std::string command_line{};         // argv, for the runs table
  Environment environment{};          // read once by the CLI
  bool live_progress = false;         // a live progress line (stderr is a terminal)
  RunExitCodes exit_codes{};          // what each outcome exits with
  // `kvsafe diagnose`: run only the diagnosis cells (diagnose.tasks, or every task when the grid
  // lists none), of `diagnose_model` alone when set. Otherwise `kvsafe run`: the grid's cells
  // plus the diagnosis cells of diagnose.tasks.
  bool diagnose_only = false;
  std::optional<std::string> diagnose_model{};
  int* argc = nullptr;  // for MPI_Init (may stay null)
  char*** argv = nullptr;
};

struct RunGridResult {
  int exit_code = 0;                             // one of RunExitCodes
  int rank = 0;                                  // this process's MPI rank (0 in process)
  std::filesystem::path db_path{};               // the database written (rank 0)
  orchestrator::SchedulerReport report{};        // rank 0 only
  std::int64_t experiment_id = 0;                // rank 0 only: the grid's experiments row
  std::vector<std::string> diagnosis_waiting{};  // rank 0: diagnosis tasks that could not plan all their cells, and why
  std::int64_t requeued_shards = 0;              // shards a crashed run had left running
  std::int64_t requeued_failed_shards = 0;       // failed shards put back by --retry-failed
};

RunGridResult run_grid(const RunGridOptions& options);

// Moves `db` (and its -wal/-shm files) to "<db>.replaced-<UTC time>" and returns the new
// path; nothing when it does not exist. Refuses (DbError) while another run holds it.
std::filesystem::path move_database_aside(const std::filesystem::path& db);

}  // namespace kvsafe::runner
