#include "orchestrator/scheduler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <type_traits>

#include "common/error.h"
#include "db/store.h"
#include "orchestrator/cell_identity.h"
#include "orchestrator/run_progress.h"
#include "orchestrator/schedule_policy.h"

namespace kvsafe::orchestrator {
namespace {

using Clock = std::chrono::steady_clock;

struct WorkerState {
  bool ready = false;                   // sent kReady
  bool alive = true;                    // false once counted as hung
  std::string host{};                   // from kReady
  std::string model{};                  // model it holds
  std::optional<db::ShardKey> shard{};  // shard in flight
  Clock::time_point last_heard{};       // last message while busy
  std::int64_t shard_prompts_done = 0;  // progress of the shard in flight
  std::int64_t shard_tokens = 0;
};

std::string shard_text(const db::ShardKey& shard) {
  return fmt::format("{}[{}, {})", shard.cell_id.substr(0, 16), shard.begin, shard.end);
}

}  // namespace

struct Scheduler::State {
  db::Store& store;
  SchedulerTransport& transport;
  SchedulerOptions options;
  std::map<std::string, const Cell*> cells;  // by id
  SchedulePolicy policy;
  std::map<int, WorkerState> workers;
  SchedulerReport report{};
  ProgressReporter progress;
  Clock::time_point started = Clock::now();
  std::int64_t prompts_total = 0;
  std::set<std::string> failed_cells;               // cells this run marked failed: their shards are not requeued
  std::deque<Cell> derived;                         // cells derive_cells added (stable addresses for `cells`)
  std::map<std::string, std::string> derived_json;  // their canonical JSON, sent with their shards
  std::string derive_error;                         // the last derivation's failure; empty after a success

  State(db::Store& s, const std::vector<Cell>& grid_cells, SchedulerTransport& t, SchedulerOptions o)
      : store(s), transport(t), options(o), policy(policy_cells(grid_cells)), progress(o.live_progress, o.log_every) {
    for (const Cell& cell : grid_cells) cells[cell.id] = &cell;
    for (const int worker : transport.workers()) workers[worker] = WorkerState{};
  }

  static std::vector<PolicyCell> policy_cells(const std::vector<Cell>& grid_cells) {
    std::vector<PolicyCell> out;
    for (std::size_t i = 0; i < grid_cells.size(); ++i)
      out.push_back(policy_cell(grid_cells[i], static_cast<std::int64_t>(i)));
    return out;
  }

  int alive_workers() const {
    return static_cast<int>(
        std::count_if(workers.begin(), workers.end(), [](const auto& w) { return w.second.alive; }));
  }
  int busy_workers() const {
    return static_cast<int>(
        std::count_if(workers.begin(), workers.end(), [](const auto& w) { return w.second.alive && w.second.shard; }));
  }

  std::string worker_name(int worker) const {
    const auto& state = workers.at(worker);
    return fmt::format("rank {}{}", worker, state.host.empty() ? "" : "@" + state.host);
  }

  // Asks derive_cells for the cells it can plan now (`completed`: the cell whose last shard was
  // just committed; empty at start and before the run ends), queues the new ones' pending
  // shards, and returns how many cells were new. A failure is logged and remembered: the run
  // then ends as failed rather than done, since dependent cells may be missing.
  std::int64_t derive(const std::string& completed) {
    if (!options.derive_cells) return 0;
    std::vector<Cell> planned;
    try {
      planned = options.derive_cells(completed);
    } catch (const std::exception& error) {
      derive_error = error.what();
      spdlog::error("scheduler: could not derive dependent cells: {}", error.what());
      return 0;
    }
    std::set<std::string> added;
    for (Cell& cell : planned) {
      if (cells.count(cell.id) != 0) continue;
      derived_json[cell.id] = canonical_json(cell);
      derived.push_back(std::move(cell));
      const Cell& stored = derived.back();
      policy.add_cell(policy_cell(stored, static_cast<std::int64_t>(cells.size())));
      cells[stored.id] = &stored;
      added.insert(stored.id);
    }
    derive_error.clear();
    if (added.empty()) return 0;
    spdlog::info("scheduler: {} cell(s) derived from stored results", added.size());
    queue_shards(added);
    return static_cast<std::int64_t>(added.size());
  }

  // Queues the pending shards of `only` (all known cells when empty).
  void queue_shards(const std::set<std::string>& only) {
    for (const db::ShardKey& shard : store.shards_with_status(db::ShardStatus::kPending)) {
      if (cells.count(shard.cell_id) == 0) continue;  // another grid's cell in a shared database
      if (!only.empty() && only.count(shard.cell_id) == 0) continue;
      policy.add(shard);
      ++report.shards_total;
      prompts_total += shard.end - shard.begin;
    }
  }

  // After a commit: a cell that has just completed may let derive_cells plan more.
  void derive_after_commit(const std::string& cell_id) {
    if (!options.derive_cells || store.cell_status(cell_id) != db::ShardStatus::kDone) return;
    derive(cell_id);
  }

  void queue_pending() {
    queue_shards({});
    derive("");
    // Cells an earlier run gave up on stay failed (their shards are not run again unless
    // --retry-failed requeued them); the run's exit code still says the grid is not complete.
    std::set<std::string> failed_before;
    for (const db::ShardKey& shard : store.shards_with_status(db::ShardStatus::kFailed)) {
      if (cells.count(shard.cell_id) != 0) failed_before.insert(shard.cell_id);
    }
    report.earlier_failed_cells = static_cast<std::int64_t>(failed_before.size());
    if (!failed_before.empty()) {
      spdlog::warn(
          "scheduler: {} cell(s) failed in an earlier run and are not run again; "
          "`kvsafe run --retry-failed` retries them",
          failed_before.size());
    }
  }

  void assign_idle() {
    for (auto& [worker, state] : workers) {
      if (!state.ready || !state.alive || state.shard) continue;
      while (auto shard = policy.next(worker, alive_workers())) {
        if (!store.claim_shard(*shard, worker_name(worker))) {
          spdlog::warn("scheduler: shard {} is no longer pending; skipped", shard_text(*shard));
          continue;
        }
        const auto json = derived_json.find(shard->cell_id);
        transport.send(worker, AssignMessage{.shard = *shard,
                                             .cell_json = json == derived_json.end() ? std::string() : json->second});
        state.shard = *shard;
        state.last_heard = Clock::now();
        state.shard_prompts_done = 0;
        state.shard_tokens = 0;
        spdlog::debug("scheduler: {} -> {}", shard_text(*shard), worker_name(worker));
        break;
      }
    }
  }

  bool shard_failed_for_good(const db::ShardKey& shard) {
    const auto failed = store.shards_with_status(db::ShardStatus::kFailed);
    return std::find(failed.begin(), failed.end(), shard) != failed.end();
  }

  // One failed attempt: recorded, then retried elsewhere or the cell marked failed.
  void on_failure(int worker, const db::ShardKey& shard, const std::string& error) {
    ++report.failed_attempts;
    store.fail_shard(shard, error, options.max_attempts);
    if (failed_cells.count(shard.cell_id) != 0) {
      // NOTE: a second shard of a cell that already failed (it was in flight meanwhile):
      // not retried now, like the cell's other shards; a later run picks it up.
      if (!shard_failed_for_good(shard)) ++report.shards_left;
      spdlog::warn("scheduler: shard {} of failed cell {} failed too: {}", shard_text(shard),
                   shard.cell_id.substr(0, 16), error);
      return;
    }
    if (shard_failed_for_good(shard)) {
      failed_cells.insert(shard.cell_id);
      const std::int64_t dropped = policy.drop_cell(shard.cell_id);
      report.shards_left += dropped;
      report.failed_cells.push_back(fmt::format("{}: {}", shard.cell_id.substr(0, 16), error));
      spdlog::error("scheduler: shard {} failed {} time(s); cell {} marked failed ({} of its shards not run): {}",
                    shard_text(shard), options.max_attempts, shard.cell_id.substr(0, 16), dropped, error);
    } else {
      policy.requeue(shard, worker);
      spdlog::warn("scheduler: shard {} failed on {}; will retry: {}", shard_text(shard), worker_name(worker), error);
    }
  }

  void on_result(int worker, ResultMessage& message) {
    const db::ShardKey shard = message.result.shard;
    try {
      store.commit_shard(message.result);
    } catch (const Error& error) {
      on_failure(worker, shard, fmt::format("commit failed: {}", error.what()));
      return;
    }
    for (const db::ModelRecord& model : message.models_loaded) {
      if (!options.run_id) break;
      // NOTE: provenance only: a failure to record it is logged, the committed shard stands.
      try {
        store.record_run_model(*options.run_id, model);
      } catch (const Error& error) {
        spdlog::warn("scheduler: could not record model {} for the run: {}", model.name, error.what());
      }
    }
    ++report.shards_committed;
    report.prompts += shard.end - shard.begin;
    for (const auto& row : message.result.generations) report.tokens += row.output_tokens;
    spdlog::debug("scheduler: {} done by {} in {:.2f} s", shard_text(shard), worker_name(worker), message.seconds);
    try {
      derive_after_commit(shard.cell_id);
    } catch (const std::exception& error) {
      // NOTE: the committed shard stands; the dependent cells are planned on the next commit,
      // before the run ends, or by the next run.
      derive_error = error.what();
      spdlog::error("scheduler: could not derive dependent cells: {}", error.what());
    }
  }

  void handle(const Envelope& envelope) {
    const auto found = workers.find(envelope.worker);
    if (found == workers.end()) {
      spdlog::warn("scheduler: message from unknown worker {} ignored", envelope.worker);
      return;
    }
    WorkerState& state = found->second;
    if (!state.alive) return;  // counted as hung already; its shard went elsewhere
    std::visit(
        [&](auto message) {
          using T = std::decay_t<decltype(message)>;
          if constexpr (std::is_same_v<T, ReadyMessage>) {
            state.ready = true;
            state.host = message.host;
            state.model = message.loaded_model;
            policy.set_loaded(envelope.worker, state.model);
          } else if constexpr (std::is_same_v<T, ProgressMessage>) {
            state.last_heard = Clock::now();
            state.shard_prompts_done = message.prompts_done;
            state.shard_tokens = message.tokens_generated;
          } else if constexpr (std::is_same_v<T, ResultMessage> || std::is_same_v<T, FailureMessage>) {
            db::ShardKey shard;
            if constexpr (std::is_same_v<T, ResultMessage>) {
              shard = message.result.shard;
            } else {
              shard = message.shard;
            }
            if (!state.shard || *state.shard != shard) {
              spdlog::warn("scheduler: {} answered for {}, which it was not running; ignored",
                           worker_name(envelope.worker), shard_text(shard));
              return;
            }
            state.shard.reset();
            state.model = message.loaded_model;
            policy.set_loaded(envelope.worker, state.model);
            if constexpr (std::is_same_v<T, ResultMessage>) {
              on_result(envelope.worker, message);
            } else {
              on_failure(envelope.worker, shard, message.error);
            }
          } else {
            spdlog::warn("scheduler: unexpected {} message from {}", to_string(tag_of(message)),
                         worker_name(envelope.worker));
          }
        },
        envelope.message);
  }

  void check_timeouts() {
    const auto now = Clock::now();
    for (auto& [worker, state] : workers) {
      if (!state.alive || !state.shard || now - state.last_heard < options.worker_timeout) continue;
      const db::ShardKey shard = *state.shard;
      state.alive = false;
      state.shard.reset();
      policy.remove_worker(worker);
      report.abandoned_workers.push_back(worker);
      const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(options.worker_timeout).count();
      spdlog::error("scheduler: {} sent nothing for {} s while running {}; counted as hung, not used again",
                    worker_name(worker), seconds, shard_text(shard));
      on_failure(worker, shard,
                 fmt::format("{} timed out: no answer within {} s (execution.worker_timeout_s)", worker_name(worker),
                             seconds));
    }
  }

  ProgressSnapshot snapshot(bool stopping) const {
    ProgressSnapshot s;
    s.elapsed_s = std::chrono::duration<double>(Clock::now() - started).count();
    s.shards_done = report.shards_committed;
    s.shards_total = report.shards_total;
    s.prompts_done = report.prompts;
    s.prompts_total = prompts_total;
    s.tokens = report.tokens;
    s.failed_cells = static_cast<std::int64_t>(report.failed_cells.size());
    s.stopping = stopping;
    for (const auto& [model, left] : policy.shards_left_per_model()) s.models[model].shards_left = left;
    for (const auto& [worker, state] : workers) {
      if (!state.alive || !state.shard) continue;
      s.prompts_done += state.shard_prompts_done;
      s.tokens += state.shard_tokens;
      ++s.models[cells.at(state.shard->cell_id)->model.name].running;
    }
    return s;
  }

  int signal_count() const { return options.signals ? options.signals->load() : 0; }

  void run() {
    queue_pending();
    spdlog::info("scheduler: {} shard(s), {} prompt(s) to run on {} worker(s)", report.shards_total, prompts_total,
                 workers.size());
    bool stopping = false;
    Clock::time_point deadline{};
    while (true) {
      const int signals = signal_count();
      if (signals >= 2) {
        report.stopped_at_once = true;
        spdlog::warn("scheduler: second stop signal: stopping at once; {} shard(s) in flight are redone on resume",
                     busy_workers());
        break;
      }
      if (signals == 1 && !stopping) {
        stopping = true;
        report.stopped_by_signal = true;
        deadline = Clock::now() + options.grace_period;
        spdlog::warn("scheduler: stop signal: no new shards; waiting up to {} s for {} shard(s) in flight",
                     std::chrono::duration_cast<std::chrono::seconds>(options.grace_period).count(), busy_workers());
      }
      if (stopping && (busy_workers() == 0 || Clock::now() >= deadline)) break;
      if (!stopping) assign_idle();
      // NOTE: one more derivation before leaving: an earlier one may have failed (a busy
      // database), and its cells would otherwise be missing from a run that says "done".
      if (policy.empty() && busy_workers() == 0) {
        if (stopping || derive("") == 0) break;
        continue;  // assign the cells just derived
      }
      if (alive_workers() == 0) {
        spdlog::error("scheduler: no worker left; {} shard(s) not run", policy.shards_left());
        break;
      }
      const bool all_idle_and_ready = std::all_of(workers.begin(), workers.end(), [](const auto& w) {
        return !w.second.alive || (w.second.ready && !w.second.shard);
      });
      if (!stopping && all_idle_and_ready && !policy.empty()) {
        KVSAFE_ASSERT(false, "scheduler: ", policy.shards_left(), " shard(s) queued but no worker may take them");
      }
      if (auto envelope = transport.receive(options.poll)) handle(*envelope);
      check_timeouts();
      progress.tick(snapshot(stopping));
    }
    report.shards_left += policy.shards_left();
    for (auto& [worker, state] : workers) {
      if (state.alive && state.shard) {
        report.abandoned_workers.push_back(worker);
        ++report.shards_left;
      }
    }
    // NOTE: after a second signal too: the caller kills or aborts only for abandoned workers,
    // so an idle worker that got no kStop would wait for work forever.
    for (const auto& [worker, state] : workers) {
      if (state.alive && !state.shard) transport.send(worker, StopMessage{});
    }
    if (!derive_error.empty()) {
      report.failed_cells.push_back("dependent cells could not be derived (rerun to retry): " + derive_error);
    }
    report.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    progress.finish(snapshot(stopping));
  }
};

Scheduler::Scheduler(db::Store& store, const std::vector<Cell>& cells, SchedulerTransport& transport,
                     SchedulerOptions options)
    : state_(std::make_unique<State>(store, cells, transport, options)) {}

Scheduler::~Scheduler() = default;

SchedulerReport Scheduler::run() {
  state_->run();
  return state_->report;
}

}  // namespace kvsafe::orchestrator
