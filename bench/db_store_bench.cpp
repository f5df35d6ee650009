// db/ throughput: the rows/s at which rank 0 can commit finished shards, and the cost of
// opening (creating + migrating) an empty database. Target (db/ brief): >= 50k generation
// rows/s when committed in 32-row shard transactions.
//
//   db_store_bench [--benchmark_filter=...]     # the database goes under $TMPDIR (default /tmp)

#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "db/records.h"
#include "db/store.h"

namespace kvsafe::db {
namespace {

constexpr std::int64_t kRows = 100000;
constexpr std::int64_t kPromptsPerCell = 500;  // AdvBench-sized cells: 200 cells
constexpr std::int64_t kShardSize = 32;

std::filesystem::path make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/kvsafe-db-bench-XXXXXX";
  const char* made = mkdtemp(pattern.data());
  if (made == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
  return made;
}

GenerationRow make_row(std::int64_t prompt_index) {
  GenerationRow row;
  row.prompt_index = prompt_index;
  row.prompt_id = "advbench-" + std::to_string(prompt_index);
  row.prompt_sha256 = std::string(64, 'a');
  row.rendered_sha256 = std::string(64, 'b');
  // A typical short refusal or compliance: a few hundred bytes.
  row.output_text = std::string(400, 'x');
  row.prompt_tokens = 48;
  row.output_tokens = 96;
  row.refused = (prompt_index % 3) == 0;
  row.judge_json = R"({"judge":"keyword","matched":["I cannot"]})";
  row.seconds = 0.8;
  return row;
}

// A database with kRows prompts registered as pending shards.
std::unique_ptr<Store> make_registered_store(const std::filesystem::path& path) {
  auto store = Store::open(path, StoreOptions{.holder_description = "db_store_bench"});
  const std::int64_t experiment = store->register_experiment(
      ExperimentRecord{.name = "bench", .grid_path = "bench.yaml", .grid_sha256 = "0", .grid_text = ""});
  std::vector<CellRecord> cells;
  for (std::int64_t c = 0; c < kRows / kPromptsPerCell; ++c) {
    cells.push_back(CellRecord{.id = "cell-" + std::to_string(c),
                               .model = "model-" + std::to_string(c % 4),
                               .kv_hash = "kv-" + std::to_string(c % 10),
                               .kv_label = "int4",
                               .kv_json = "{}",
                               .kv_effective_bits = 4.25,
                               .task = "refusal",
                               .benchmark = "advbench",
                               .canonical_json = "{}",
                               .n_prompts = kPromptsPerCell});
  }
  store->register_cells(experiment, cells, kShardSize);
  return store;
}

// Commits kRows generation rows, one transaction per 32-row shard, as the scheduler does.
// claim: also run the claim transaction before each commit (the full per-shard cost).
void commit_all(benchmark::State& state, bool claim) {
  const std::filesystem::path dir = make_temp_dir();
  std::int64_t iteration = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const auto path = dir / ("bench-" + std::to_string(iteration++) + ".db");
    auto store = make_registered_store(path);
    const std::vector<ShardKey> shards = store->shards_with_status(ShardStatus::kPending);
    std::vector<ShardResult> results;
    results.reserve(shards.size());
    for (const ShardKey& shard : shards) {
      ShardResult result;
      result.shard = shard;
      for (std::int64_t i = shard.begin; i < shard.end; ++i) result.generations.push_back(make_row(i));
      results.push_back(std::move(result));
    }
    state.ResumeTiming();
    for (const ShardResult& result : results) {
      if (claim) store->claim_shard(result.shard, "rank1");
      store->commit_shard(result);
    }
    state.PauseTiming();
    store.reset();
    std::filesystem::remove(path);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.counters["shards"] = static_cast<double>(kRows / kShardSize);
  std::filesystem::remove_all(dir);
}

void BM_CommitShards_100kRows(benchmark::State& state) {
  commit_all(state, /*claim=*/false);
}
void BM_ClaimAndCommitShards_100kRows(benchmark::State& state) {
  commit_all(state, /*claim=*/true);
}

void BM_OpenAndMigrateEmpty(benchmark::State& state) {
  const std::filesystem::path dir = make_temp_dir();
  std::int64_t iteration = 0;
  for (auto _ : state) {
    const auto path = dir / ("empty-" + std::to_string(iteration++) + ".db");
    auto store = Store::open(path, StoreOptions{.holder_description = "db_store_bench"});
    benchmark::DoNotOptimize(store.get());
  }
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_CommitShards_100kRows)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_ClaimAndCommitShards_100kRows)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_OpenAndMigrateEmpty)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvsafe::db

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);  // keep migration notices out of the results
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
