// Grid expansion at scale: a 100,000-cell grid (10 models x 100 kv specs x 100
// benchmark variants) parsed, expanded with canonical JSON and SHA-256 ids, and the
// per-cell canonical JSON recomputed from the parts. Target: expansion under 1 s.
//
// Deps: kvsafe_orchestrator benchmark::benchmark benchmark::benchmark_main

#include <benchmark/benchmark.h>

#include <string>

#include "orchestrator/cell_identity.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"

namespace kvsafe::orchestrator {
namespace {

// 10 models; kv: 7 bits x 2 symmetric x 3 granularities (42) + 7 x 2 x 4 group sizes (56)
// + none + fp8 = 100; benchmarks: advbench with limit 1..100 = 100 variants.
std::string big_grid_yaml() {
  std::string yaml = "name: big\nmodels:\n";
  for (int m = 0; m < 10; ++m) {
    yaml += "  - {name: model-" + std::to_string(m) + ", path: /models/m" + std::to_string(m) + ", layers: 32}\n";
  }
  yaml +=
      "kv_cache:\n"
      "  - scheme: none\n"
      "  - scheme: fp8_e4m3\n"
      "  - {scheme: int, bits: [2, 3, 4, 5, 6, 7, 8], symmetric: [true, false],\n"
      "     granularity: [per_token, per_channel, per_tensor]}\n"
      "  - {scheme: int, bits: [2, 3, 4, 5, 6, 7, 8], symmetric: [true, false],\n"
      "     granularity: per_group, group_size: [32, 64, 128, 256]}\n"
      "benchmarks:\n";
  for (int limit = 1; limit <= 100; ++limit) yaml += "  - {name: advbench, limit: " + std::to_string(limit) + "}\n";
  return yaml;
}

const GridSpec& big_grid() {
  static const GridSpec grid = [] {
    Environment env;
    ParseResult result = parse_grid_text(big_grid_yaml(), "big.yaml", env, {.base_dir = "/"});
    if (!result.ok()) throw std::runtime_error(result.diagnostics.format());
    return *result.grid;
  }();
  return grid;
}

void BM_ParseBigGrid(benchmark::State& state) {
  const std::string yaml = big_grid_yaml();
  Environment env;
  for (auto _ : state) {
    ParseResult result = parse_grid_text(yaml, "big.yaml", env, {.base_dir = "/"});
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_ParseBigGrid)->Unit(benchmark::kMillisecond);

// expand_grid: 100k cells, each with canonical JSON hashed into its id.
void BM_ExpandGrid100k(benchmark::State& state) {
  const GridSpec& grid = big_grid();
  std::size_t cells = 0;
  for (auto _ : state) {
    std::vector<Cell> out = expand_grid(grid);
    cells = out.size();
    benchmark::DoNotOptimize(out);
  }
  state.counters["cells"] = static_cast<double>(cells);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * cells));
}
BENCHMARK(BM_ExpandGrid100k)->Unit(benchmark::kMillisecond);

// canonical_json(cell) + sha256 recomputed from a cell's parts (what a consumer that
// re-derives ids, e.g. the database's integrity check, pays per cell).
void BM_CanonicalJsonAndId100k(benchmark::State& state) {
  const std::vector<Cell> cells = expand_grid(big_grid());
  for (auto _ : state) {
    std::size_t mismatches = 0;
    for (const Cell& c : cells) mismatches += cell_id_of(canonical_json(c)) != c.id;
    benchmark::DoNotOptimize(mismatches);
  }
  state.counters["cells"] = static_cast<double>(cells.size());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * cells.size()));
}
BENCHMARK(BM_CanonicalJsonAndId100k)->Unit(benchmark::kMillisecond);

// The parser's exclude check walks the same product without hashing.
void BM_CountCells100k(benchmark::State& state) {
  const GridSpec& grid = big_grid();
  for (auto _ : state) benchmark::DoNotOptimize(count_cells(grid));
}
BENCHMARK(BM_CountCells100k)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvsafe::orchestrator
