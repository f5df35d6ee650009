#include "worker/worker_loop.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <exception>
#include <thread>
#include <type_traits>

#include "common/error.h"
#include "orchestrator/cell_identity.h"

namespace kvsafe::worker {
namespace {

using Clock = std::chrono::steady_clock;
using orchestrator::FaultKind;

// Acts on a fault that ends or stalls the worker; a throw fault is thrown.
void inject(const orchestrator::Fault& fault, int rank, std::int64_t shard_number) {
  switch (fault.kind) {
    case FaultKind::kThrow:
      throw Error(
          fmt::format("KVSAFE_FAULT: injected failure on rank {} (shard #{} of this worker)", rank, shard_number));
    case FaultKind::kExit:
      spdlog::warn("KVSAFE_FAULT: rank {} exits with status {} before its shard #{}", rank,
                   orchestrator::kFaultExitCode, shard_number);
      spdlog::default_logger()->flush();
      ::_exit(orchestrator::kFaultExitCode);
    case FaultKind::kSigkill:
      spdlog::warn("KVSAFE_FAULT: rank {} kills itself (SIGKILL) before its shard #{}", rank, shard_number);
      spdlog::default_logger()->flush();
      ::raise(SIGKILL);
      break;
    case FaultKind::kHang:
      spdlog::warn("KVSAFE_FAULT: rank {} hangs before its shard #{}", rank, shard_number);
      while (true) std::this_thread::sleep_for(std::chrono::hours(1));
    case FaultKind::kDelay:
      break;  // applied by the loop before every shard
  }
}

}  // namespace

std::int64_t run_worker_loop(orchestrator::WorkerChannel& channel,
                             const std::map<std::string, orchestrator::Cell>& cells, ShardExecutor& executor,
                             const WorkerLoopOptions& options) {
  channel.send(orchestrator::ReadyMessage{.host = options.host, .loaded_model = executor.loaded_model()});
  std::int64_t shards = 0;
  std::map<std::string, orchestrator::Cell> derived;  // cells the scheduler derived during the run
  // The cell of a shard: the grid's own, or a derived one (rebuilt from its JSON the first time).
  const auto find_cell = [&](const orchestrator::AssignMessage& assign) -> const orchestrator::Cell& {
    if (const auto cell = cells.find(assign.shard.cell_id); cell != cells.end()) return cell->second;
    if (const auto cell = derived.find(assign.shard.cell_id); cell != derived.end()) return cell->second;
    KVSAFE_CHECK(!assign.cell_json.empty(), "cell ", assign.shard.cell_id,
                 " is not in this rank's expansion of the grid (ranks built from different grids?)");
    KVSAFE_CHECK(options.grid != nullptr, "cell ", assign.shard.cell_id.substr(0, 16),
                 " was derived during the run, and this worker was given no grid to rebuild it");
    return derived
        .emplace(assign.shard.cell_id,
                 orchestrator::cell_from_canonical_json(assign.cell_json, *options.grid, assign.shard.cell_id))
        .first->second;
  };
  while (true) {
    orchestrator::Message message = channel.receive();
    if (std::holds_alternative<orchestrator::StopMessage>(message)) break;
    const auto* assign = std::get_if<orchestrator::AssignMessage>(&message);
    KVSAFE_CHECK(assign != nullptr, "run protocol: worker rank ", options.rank, " got an unexpected ",
                 orchestrator::to_string(orchestrator::tag_of(message)), " message");
    const db::ShardKey shard = assign->shard;
    ++shards;
    const auto started = Clock::now();
    try {
      const orchestrator::Cell& cell = find_cell(*assign);
      if (const auto delay = options.faults.delay_ms(options.rank); delay > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      }
      if (auto fault = options.faults.before_shard(options.rank, shards, cell.kv_label)) {
        inject(*fault, options.rank, shards);
      }
      Clock::time_point last_beat = started;
      const auto on_progress = [&](const ShardProgress& progress) {
        const auto now = Clock::now();
        if (now - last_beat < options.heartbeat_every) return;
        last_beat = now;
        channel.send(orchestrator::ProgressMessage{
            .shard = shard, .prompts_done = progress.prompts_done, .tokens_generated = progress.tokens_generated});
      };
      orchestrator::ResultMessage result{.result = executor.run(cell, shard.begin, shard.end, on_progress)};
      result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
      result.loaded_model = executor.loaded_model();
      result.models_loaded = executor.take_models_loaded();
      channel.send(result);
    } catch (const std::exception& error) {
      spdlog::warn("worker rank {}: shard {}[{}, {}) failed: {}", options.rank, shard.cell_id.substr(0, 16),
                   shard.begin, shard.end, error.what());
      channel.send(
          orchestrator::FailureMessage{.shard = shard, .error = error.what(), .loaded_model = executor.loaded_model()});
    }
  }
  return shards;
}

}  // namespace kvsafe::worker
