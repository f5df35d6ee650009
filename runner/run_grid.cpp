#include "runner/run_grid.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "cluster/slurm_job.h"
#include "common/error.h"
#include "db/store.h"
#include "orchestrator/diagnosis_plan.h"
#include "orchestrator/fault_injection.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"
#include "orchestrator/inprocess_transport.h"
#include "orchestrator/mpi_transport.h"
#include "orchestrator/registration.h"
#include "orchestrator/run_signals.h"
#include "runner/diagnosis_derivation.h"
#include "runner/run_preparation.h"
#include "worker/worker_loop.h"

namespace kvsafe::runner {
namespace {

namespace orch = orchestrator;

std::string local_host() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "localhost";
  return name.data();
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  KVSAFE_CHECK(in.good(), "cannot read the grid file ", path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The grid as every rank sees it: rank 0's text, parsed against the grid file's folder.
struct LoadedGrid {
  orch::GridSpec spec;
  std::vector<orch::Cell> cells;
  std::string text;
  std::vector<orch::DiagnosisTask> diagnosis_tasks{};  // planned during the run (diagnosis_derivation.h)
  std::vector<std::string> diagnosis_models{};
};

// What the run diagnoses: the grid's diagnose.tasks; `kvsafe diagnose` runs every task when
// the grid lists none, and only the diagnosis cells.
void choose_diagnosis(LoadedGrid& grid, const RunGridOptions& options) {
  grid.diagnosis_tasks = grid.spec.diagnose.tasks;
  if (options.diagnose_only) {
    grid.cells.clear();
    if (grid.diagnosis_tasks.empty()) {
      for (const auto name : orch::diagnosis_task_names())
        grid.diagnosis_tasks.push_back(*orch::parse_diagnosis_task(name));
    }
  }
  if (grid.diagnosis_tasks.empty()) return;
  grid.diagnosis_models = orch::diagnosed_models(grid.spec);
  if (options.diagnose_model) {
    KVSAFE_CHECK(grid.spec.find_model(*options.diagnose_model) != nullptr, "--model ", *options.diagnose_model,
                 ": the grid ", options.grid_path.string(), " has no model of that name");
    grid.diagnosis_models = {*options.diagnose_model};
  }
}

LoadedGrid parse_grid(const std::string& text, const RunGridOptions& options, bool report_diagnostics) {
  const auto grid_dir = std::filesystem::absolute(options.grid_path).parent_path();
  auto parsed = orch::parse_grid_text(text, options.grid_path.string(), options.environment,
                                      {.require_model_files = true, .base_dir = grid_dir});
  if (report_diagnostics && !parsed.diagnostics.empty()) spdlog::warn("{}", parsed.diagnostics.format());
  KVSAFE_CHECK(parsed.ok(), options.grid_path.string(), " has ", parsed.diagnostics.error_count(),
               " error(s); nothing run:\n", parsed.diagnostics.format());
  LoadedGrid grid{.spec = std::move(*parsed.grid), .cells = {}, .text = text};
  grid.cells = orch::expand_grid(grid.spec);
  choose_diagnosis(grid, options);
  count_perplexity_windows(grid.cells, options.environment.data_dir);
  return grid;
}

int cores() {
  return static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
}

// NOTE: workers on one node share its cores; each gets an equal slice so BLAS threads do not
// oversubscribe (rank 0 only schedules and is not counted). docs/run.md, "Threads".
int threads_per_worker(int local_workers, const Environment& env) {
  if (env.threads > 0) return env.threads;  // $KVSAFE_THREADS
  return std::max(1, cores() / std::max(1, local_workers));
}

worker::ShardExecutorOptions executor_options(const LoadedGrid& grid, const RunGridOptions& options, int threads) {
  return {.data_dir = options.environment.data_dir, .device = "cpu", .threads = threads, .judge = grid.spec.judge};
}

orch::SchedulerOptions scheduler_options(const LoadedGrid& grid, const RunGridOptions& options, std::int64_t run_id,
                                         DiagnosisDeriver* deriver) {
  const auto& execution = grid.spec.execution;
  std::function<std::vector<orch::Cell>(const std::string&)> derive;
  if (deriver != nullptr) derive = [deriver](const std::string& completed) { return deriver->derive(completed); };
  return {.max_attempts = static_cast<int>(execution.retries) + 1,
          .worker_timeout = std::chrono::seconds(execution.worker_timeout_s),
          .grace_period = std::chrono::seconds(execution.grace_period_s),
          .signals = orch::RunSignals::counter(),
          .poll = std::chrono::milliseconds(100),
          .live_progress = options.live_progress,
          .log_every = std::chrono::seconds(30),
          .run_id = run_id,
          .derive_cells = derive};
}

std::map<std::string, orch::Cell> cells_by_id(const std::vector<orch::Cell>& cells) {
  std::map<std::string, orch::Cell> by_id;
  for (const auto& cell : cells) by_id.emplace(cell.id, cell);
  return by_id;
}

int exit_code_for(const orch::SchedulerReport& report, const RunExitCodes& codes) {
  if (report.stopped_at_once) return codes.interrupted;
  // NOTE: a drain that left no shard has nothing to resume: not "interrupted" (a SLURM job
  // script would requeue it for nothing); it ends as a run without the signal would.
  if (report.stopped_by_signal && report.shards_left > 0) return codes.interrupted;
  if (!report.failed_cells.empty() || report.shards_left > 0 || report.earlier_failed_cells > 0) {
    return codes.failed;
  }
  return codes.ok;
}

std::string status_text(const orch::SchedulerReport& report) {
  if (report.stopped_at_once) return "interrupted";
  if (report.stopped_by_signal) return report.shards_left > 0 ? "stopped" : "stopped (drained)";
  if (!report.failed_cells.empty() || report.earlier_failed_cells > 0) return "failed";
  if (report.shards_left > 0) return "incomplete";
  return "done";
}

// Rank 0's part: database, registration, provenance, the scheduler. `transport` reaches the
// workers; `hosts` are every rank's host names.
struct SchedulerSide {
  std::unique_ptr<db::Store> store;
  std::int64_t run_id = 0;
  RunGridResult result;
  std::unique_ptr<DiagnosisDeriver> deriver;  // when the run diagnoses
};

SchedulerSide prepare(const LoadedGrid& grid, const RunGridOptions& options, int ranks,
                      const std::vector<std::string>& hosts) {
  SchedulerSide side;
  side.result.db_path = options.db_path.empty() ? grid.spec.default_db_path() : options.db_path;
  if (options.fresh) {
    const auto moved = move_database_aside(side.result.db_path);
    if (!moved.empty()) spdlog::warn("--fresh: moved the old database to {}", moved.string());
  }
  side.store = db::Store::open(side.result.db_path, {.holder_description = options.command_line});
  const auto registered =
      orch::register_grid(*side.store, grid.spec, grid.cells, {.path = options.grid_path.string(), .text = grid.text});
  register_benchmark_prompts(*side.store, grid.cells, options.environment.data_dir);
  side.result.requeued_shards = side.store->requeue_in_flight();
  if (options.retry_failed) side.result.requeued_failed_shards = side.store->requeue_failed();
  spdlog::info("run: grid {} -> {}: {} cell(s) ({} new), {} shard(s) left running by an earlier run requeued",
               grid.spec.name, side.result.db_path.string(), grid.cells.size(), registered.cells.new_cells,
               side.result.requeued_shards);
  side.result.experiment_id = registered.experiment_id;
  if (!grid.diagnosis_tasks.empty()) {
    side.deriver =
        std::make_unique<DiagnosisDeriver>(*side.store, grid.spec,
                                           DiagnosisDerivationOptions{.tasks = grid.diagnosis_tasks,
                                                                      .models = grid.diagnosis_models,
                                                                      .experiment_id = registered.experiment_id,
                                                                      .data_dir = options.environment.data_dir});
  }
  side.run_id = side.store->begin_run(
      {.experiment_id = registered.experiment_id,
       .command_line = options.command_line,
       .hosts = hosts,
       .ranks = ranks,
       .slurm_job_id = options.environment.slurm_job_id,
       .slurm_json = cluster::to_json(cluster::slurm_job_from(options.environment.slurm_variables))});
  return side;
}

void finish(SchedulerSide& side, const orch::SchedulerReport& report, const RunExitCodes& codes) {
  side.result.report = report;
  if (side.deriver) {
    side.result.diagnosis_waiting = side.deriver->waiting();
    try {
      const std::int64_t recorded = side.deriver->record_diagnoses();
      if (recorded > 0) spdlog::info("run: recorded the diagnosis of {} model(s) in the database", recorded);
    } catch (const Error& e) {  // the results are stored; only the summary row is missing
      spdlog::error("run: could not record the diagnoses: {}", e.what());
    }
  }
  side.result.exit_code = exit_code_for(report, codes);
  side.store->end_run(side.run_id, side.result.exit_code, status_text(report));
  spdlog::info("run: {} shard(s) committed, {} failed attempt(s), {} cell(s) failed, {} shard(s) left; {:.1f} s; {}",
               report.shards_committed, report.failed_attempts, report.failed_cells.size(), report.shards_left,
               report.seconds, status_text(report));
  for (const auto& cell : report.failed_cells) spdlog::error("failed cell {}", cell);
}

RunGridResult run_in_process(const RunGridOptions& options, const orch::FaultPlan& faults) {
  const LoadedGrid grid = parse_grid(read_text(options.grid_path), options, true);
  const orch::RunSignals signals;
  SchedulerSide side = prepare(grid, options, 1, {local_host()});
  const int threads = threads_per_worker(1, options.environment);
  spdlog::info("run: in process, one worker with {} thread(s)", threads);

  orch::InProcessLink link;
  const auto cells = cells_by_id(grid.cells);
  worker::ShardExecutor executor(executor_options(grid, options, threads));
  // NOTE: the worker runs on the main thread and the scheduler on a second one, as on an MPI
  // rank: libtorch and its OpenMP pool see the same thread layout in both modes.
  std::exception_ptr scheduler_error;
  std::thread scheduler_thread([&] {
    try {
      orch::Scheduler scheduler(*side.store, grid.cells, link.scheduler_side(),
                                scheduler_options(grid, options, side.run_id, side.deriver.get()));
      const orch::SchedulerReport report = scheduler.run();
      finish(side, report, options.exit_codes);
      if (!report.abandoned_workers.empty()) {
        // NOTE: the worker is inside a shard (second signal, or hung); its result would not
        // be stored anyway. The database is closed first, so nothing is half written.
        side.store.reset();
        spdlog::warn("run: leaving with a shard in flight; it is redone on resume");
        spdlog::default_logger()->flush();
        std::_Exit(side.result.exit_code);
      }
    } catch (...) {
      scheduler_error = std::current_exception();
      link.scheduler_side().send(0, orch::StopMessage{});  // the worker finishes its shard, then leaves
    }
  });
  try {
    worker::run_worker_loop(link.worker_side(), cells, executor,
                            {.rank = 0,
                             .host = local_host(),
                             .faults = faults,
                             .heartbeat_every = std::chrono::seconds(1),
                             .grid = &grid.spec});
  } catch (const std::exception& error) {
    spdlog::error("in-process worker stopped: {}", error.what());
  }
  scheduler_thread.join();
  if (scheduler_error) std::rethrow_exception(scheduler_error);
  return std::move(side.result);
}

RunGridResult run_mpi(const RunGridOptions& options, const orch::FaultPlan& faults) {
  orch::MpiSession session(options.argc, options.argv);
  const bool scheduler_rank = session.rank() == 0;
  std::optional<orch::RunSignals> signals;
  if (scheduler_rank) {
    signals.emplace();
  } else {
    orch::ignore_stop_signals();
  }
  try {
    std::string text;
    if (scheduler_rank) {
      try {
        text = read_text(options.grid_path);
      } catch (const Error& error) {
        spdlog::error("{}", error.what());  // the others get empty text and fail alike
      }
    }
    text = session.broadcast_text(text);
    KVSAFE_CHECK(!text.empty(), "the grid ", options.grid_path.string(), " is empty or unreadable on rank 0");
    const LoadedGrid grid = parse_grid(text, options, scheduler_rank);
    const auto hosts = session.all_hosts();
    if (session.size() == 1) {
      // NOTE: `mpirun -np 1`: no worker rank, so the in-process worker does the work.
      RunGridOptions single = options;
      return run_in_process(single, faults);
    }
    if (!scheduler_rank) {
      const int threads = threads_per_worker(session.local_workers(), options.environment);
      worker::ShardExecutor executor(executor_options(grid, options, threads));
      orch::MpiWorkerChannel channel;
      const auto shards = worker::run_worker_loop(channel, cells_by_id(grid.cells), executor,
                                                  {.rank = session.rank(),
                                                   .host = session.host(),
                                                   .faults = faults,
                                                   .heartbeat_every = std::chrono::seconds(1),
                                                   .grid = &grid.spec});
      spdlog::debug("worker rank {}: {} shard(s), {} thread(s)", session.rank(), shards, threads);
      return {.exit_code = options.exit_codes.ok, .rank = session.rank()};
    }
    SchedulerSide side = prepare(grid, options, session.size(), hosts);
    spdlog::info("run: {} MPI ranks: rank 0 schedules, {} worker(s); {} thread(s) per worker on this node",
                 session.size(), session.size() - 1, threads_per_worker(session.local_workers(), options.environment));
    orch::MpiSchedulerTransport transport(session);
    orch::Scheduler scheduler(*side.store, grid.cells, transport,
                              scheduler_options(grid, options, side.run_id, side.deriver.get()));
    const orch::SchedulerReport report = scheduler.run();
    finish(side, report, options.exit_codes);
    if (!report.abandoned_workers.empty()) {
      side.store.reset();
      spdlog::warn("run: {} worker(s) hung or still busy; aborting the MPI job (in-flight shards redo on resume)",
                   report.abandoned_workers.size());
      spdlog::default_logger()->flush();
      session.abort(side.result.exit_code);
    }
    side.result.rank = 0;
    return std::move(side.result);
  } catch (const std::exception& error) {
    // NOTE: an error on any rank would leave the others waiting forever; end the job.
    spdlog::error("rank {}: {}", session.rank(), error.what());
    spdlog::default_logger()->flush();
    session.abort(options.exit_codes.failed);
  }
}

}  // namespace

std::filesystem::path move_database_aside(const std::filesystem::path& db) {
  if (!std::filesystem::exists(db)) return {};
  // NOTE: open and close it as a writer first: that refuses while another run holds it.
  db::Store::open(db, {.holder_description = "kvsafe run --fresh"}).reset();
  const std::time_t now = std::time(nullptr);
  const std::string stamp = fmt::format("{:%Y%m%dT%H%M%SZ}", fmt::gmtime(now));
  const std::filesystem::path target = db.string() + ".replaced-" + stamp;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::filesystem::path from = db.string() + suffix;
    if (std::filesystem::exists(from)) std::filesystem::rename(from, target.string() + suffix);
  }
  return target;
}

RunGridResult run_grid(const RunGridOptions& options) {
  const orch::FaultPlan faults = orch::FaultPlan::parse(options.environment.fault);
  if (!faults.empty()) spdlog::warn("KVSAFE_FAULT={}: injecting faults (tests only)", options.environment.fault);
  if (options.environment.launched_by_mpi) return run_mpi(options, faults);
  return run_in_process(options, faults);
}

}  // namespace kvsafe::runner
