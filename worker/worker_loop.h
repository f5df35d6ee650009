#pragma once
// The worker loop: what an MPI rank >= 1 (or the in-process worker thread of a one-rank run)
// does until the scheduler says stop. It announces itself (kReady), then for each kAssign
// runs the shard with its ShardExecutor (which keeps the model loaded between shards), and
// answers with kResult or kFailure; kProgress heartbeats go out while a shard runs.
//
// A shard's error never ends the loop: it is caught at the shard boundary and sent as a
// kFailure with its text (STYLE.md). Transport errors are thrown. Faults from KVSAFE_FAULT
// (orchestrator/fault_injection.h) are injected here, before a shard starts.

#include <chrono>
#include <map>
#include <string>

#include "orchestrator/cell.h"
#include "orchestrator/fault_injection.h"
#include "orchestrator/transport.h"
#include "worker/shard_executor.h"

namespace kvsafe::worker {

struct WorkerLoopOptions {
  int rank = 0;                                     // MPI rank (0 for the in-process worker): faults, logs
  std::string host{};                               // host name sent in kReady
  orchestrator::FaultPlan faults{};                 // parsed KVSAFE_FAULT; empty: none
  std::chrono::milliseconds heartbeat_every{1000};  // at most one kProgress per this interval
  // The grid, to rebuild the cells the scheduler derives during the run (they come as JSON with
  // their shards, orchestrator/diagnosis_plan.h). Null: such a shard fails with a clear error.
  const orchestrator::GridSpec* grid = nullptr;
};

// Runs until kStop. `cells` are the grid's cells by id (every rank expands the same grid); a
// derived cell arrives with its first shard and is kept for the next ones.
// Returns the number of shards this worker ran (finished or failed).
std::int64_t run_worker_loop(orchestrator::WorkerChannel& channel,
                             const std::map<std::string, orchestrator::Cell>& cells, ShardExecutor& executor,
                             const WorkerLoopOptions& options);

}  // namespace kvsafe::worker
