#pragma once
// The prompts of a grid cell, selected exactly as the orchestrator counted them
// (orchestrator::prompt_count): the benchmark's prompts in file order (only those of its
// `subset` when set), then the first `limit`, then a seeded sample of `sample` of those
// (eval/prompt_sampling.h; file order kept). Cell prompt index i is position i of the result.
//
// Calibration (eval::BenchmarkInfo::per_class_prompt_count) draws its classes apart: the
// harmful prompts, then the harmless ones, each the first `limit` of its file, then a seeded
// sample of `sample` (default 128 each, Arditi et al.'s n_train) of those.
//
// NOTE: eval::LoadOptions applies sample before limit; the grid language (docs/grid.md)
// applies limit first, so this selects itself instead of passing both to load_benchmark.

#include <filesystem>

#include "eval/benchmark_registry.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::worker {

// Throws InputError naming the missing file (and the data directory) when the data is not
// there, and for benchmarks that are not prompt sets (wikitext).
eval::Benchmark load_cell_prompts(const orchestrator::BenchmarkSpec& benchmark, const std::filesystem::path& data_dir);

}  // namespace kvsafe::worker
