// Scheduling + database overhead per shard with real short shards: stories260K, 8 prompts
// per shard, 3 cells x 4 shards. BM_ShardsDirect runs the shards with a ShardExecutor alone;
// BM_ShardsThroughScheduler runs the same shards through the Scheduler, the in-process
// transport (serialized messages) and one SQLite transaction per shard. The difference per
// shard is the runner's overhead; the CPU time of BM_ShardsThroughScheduler is the scheduler
// thread's own cost (serialization, SQLite commits), the worker runs on a second thread.
// Run: OMP_WAIT_POLICY=passive build/bench/scheduler_bench --benchmark_min_time=3
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <thread>

#include "common/environment.h"
#include "db/store.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"
#include "orchestrator/inprocess_transport.h"
#include "orchestrator/registration.h"
#include "orchestrator/scheduler.h"
#include "orchestrator/shards.h"
#include "worker/shard_executor.h"
#include "worker/worker_loop.h"

namespace {

using namespace kvsafe;

constexpr std::int64_t kShardSize = 8;

struct BenchGrid {
  Environment env;
  orchestrator::GridSpec grid;
  std::vector<orchestrator::Cell> cells;
  std::string text;
  std::int64_t shards = 0;
};

const BenchGrid& bench_grid() {
  static const BenchGrid loaded = [] {
    spdlog::set_level(spdlog::level::warn);  // per-run info lines would swamp the table
    BenchGrid g;
    g.env = Environment::from_process(KVSAFE_SOURCE_DIR);
    const std::string model = std::string(KVSAFE_SOURCE_DIR) + "/../shared/models/stories260K/stories260K.gguf";
    g.text =
        "name: scheduler-bench\n"
        "models:\n  - {name: stories260k, path: " +
        model +
        ", chat_template: llama-2, params: 260k}\n"
        "kv_cache:\n  - scheme: none\n  - {scheme: int, bits: [8, 4], symmetric: false, granularity: per_token}\n"
        "benchmarks:\n  - {name: custom, limit: 32}\n"
        "generation: {max_new_tokens: 16, batch_size: 8}\n"
        "execution: {shard_size: 8}\n";
    auto parsed = orchestrator::parse_grid_text(g.text, "scheduler-bench", g.env, {});
    if (!parsed.ok()) throw std::runtime_error(parsed.diagnostics.format());
    g.grid = *parsed.grid;
    g.cells = orchestrator::expand_grid(g.grid);
    for (const auto& cell : g.cells) g.shards += orchestrator::shard_ranges(cell.n_prompts, kShardSize).size();
    return g;
  }();
  return loaded;
}

worker::ShardExecutorOptions executor_options(const BenchGrid& g) {
  return {.data_dir = g.env.data_dir, .device = "cpu", .threads = 1, .judge = g.grid.judge};
}

void BM_ShardsDirect(benchmark::State& state) {
  const BenchGrid& g = bench_grid();
  worker::ShardExecutor executor(executor_options(g));
  for (auto _ : state) {
    for (const auto& cell : g.cells) {
      for (const auto& range : orchestrator::shard_ranges(cell.n_prompts, kShardSize)) {
        benchmark::DoNotOptimize(executor.run(cell, range.begin, range.end));
      }
    }
  }
  state.counters["shards/s"] =
      benchmark::Counter(static_cast<double>(g.shards * state.iterations()), benchmark::Counter::kIsRate);
}

void BM_ShardsThroughScheduler(benchmark::State& state) {
  const BenchGrid& g = bench_grid();
  worker::ShardExecutor executor(executor_options(g));
  std::map<std::string, orchestrator::Cell> by_id;
  for (const auto& cell : g.cells) by_id.emplace(cell.id, cell);
  const auto db = std::filesystem::temp_directory_path() / "kvsafe_scheduler_bench.db";
  for (auto _ : state) {
    state.PauseTiming();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + suffix);
    auto store = db::Store::open(db);
    orchestrator::register_grid(*store, g.grid, g.cells, {.path = "scheduler-bench", .text = g.text});
    state.ResumeTiming();
    orchestrator::InProcessLink link;
    std::thread worker([&] { worker::run_worker_loop(link.worker_side(), by_id, executor, {}); });
    orchestrator::Scheduler scheduler(*store, g.cells, link.scheduler_side(), {.log_every = std::chrono::hours(1)});
    const auto report = scheduler.run();
    worker.join();
    if (report.shards_committed != g.shards) state.SkipWithError("not every shard was committed");
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + suffix);
  state.counters["shards/s"] =
      benchmark::Counter(static_cast<double>(g.shards * state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_ShardsDirect)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ShardsThroughScheduler)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
