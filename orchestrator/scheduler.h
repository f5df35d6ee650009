#pragma once
// Scheduler: rank 0's loop and the only database writer. It queues the pending shards of a
// grid's cells (SchedulePolicy), hands them to workers over a SchedulerTransport, commits
// each result as one transaction, retries failures, notices hung workers and stops on
// signals. The same code runs one in-process worker or N-1 MPI ranks (transport.h).
//
//   Scheduler scheduler(store, cells, transport, {.max_attempts = 3});
//   SchedulerReport report = scheduler.run();
//
// Before run(), the caller registers the cells and requeues shards a crashed run left
// running (Store::requeue_in_flight). Database errors on commit count as a failed attempt
// of that shard; other errors (transport, protocol) are thrown.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "orchestrator/cell.h"
#include "orchestrator/transport.h"

namespace kvsafe::db {
class Store;
}

namespace kvsafe::orchestrator {

struct SchedulerOptions {
  int max_attempts = 3;                               // execution.retries + 1
  std::chrono::milliseconds worker_timeout{600'000};  // a busy worker silent this long counts as hung
  std::chrono::milliseconds grace_period{60'000};     // after the first stop signal: drain time
  const std::atomic<int>* signals = nullptr;          // stop-signal count (RunSignals::counter()); null: none
  std::chrono::milliseconds poll{100};                // longest wait for a message before re-checking
  bool live_progress = false;                         // a live progress line (stderr is a terminal)
  std::chrono::milliseconds log_every{30'000};        // plain progress log interval otherwise
  std::optional<std::int64_t> run_id{};               // runs row that gets the models workers load
  // Cells that depend on stored results (the diagnosis: orchestrator/diagnosis_plan.h). Called
  // before the first assignment and before the run ends with "", and with a cell's id each
  // time its last shard is committed; returns every cell it can plan now, already registered
  // in the store (known ids are skipped). Their pending shards join the queue, and workers get
  // each one's JSON with its shards. A throw is logged; if the last call failed, the run
  // reports a failed cell ("dependent cells could not be derived"). Null: none.
  std::function<std::vector<Cell>(const std::string& completed_cell_id)> derive_cells{};
};

struct SchedulerReport {
  std::int64_t shards_total = 0;            // shards this run set out to run
  std::int64_t shards_committed = 0;        // finished and committed by this run
  std::int64_t failed_attempts = 0;         // attempts that failed (retried or not)
  std::vector<std::string> failed_cells{};  // cells this run marked failed, with their last error
  std::int64_t earlier_failed_cells = 0;    // cells of this grid an earlier run marked failed (not rerun)
  std::int64_t shards_left = 0;             // not run: stopped, cell failed, or no worker left
  std::int64_t prompts = 0;                 // prompts in committed shards
  std::int64_t tokens = 0;                  // generated tokens in committed shards
  double seconds = 0;                       // wall time of run()
  bool stopped_by_signal = false;           // a stop signal ended the run early
  bool stopped_at_once = false;             // a second signal: in-flight shards abandoned
  std::vector<int> abandoned_workers{};     // hung, or still busy at the end: must be killed
};

class Scheduler {
 public:
  Scheduler(db::Store& store, const std::vector<Cell>& cells, SchedulerTransport& transport, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs until every pending shard of the cells is committed or failed, a stop signal, or
  // no worker is left. Sends kStop to the workers that can still hear it.
  SchedulerReport run();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace kvsafe::orchestrator
