#pragma once
// GridSpec -> cells: the Cartesian product models x kv specs x benchmarks x generation
// settings, minus the cells an exclude rule matches. The order is deterministic (models
// outermost, generation settings innermost, each in grid order), and each cell appears
// once: a task that does not generate (perplexity) gets one cell however many
// generation settings the grid sweeps.

#include <cstdint>
#include <optional>
#include <vector>

#include "orchestrator/cell.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::orchestrator {

// Whether a task generates text (and so depends on generation settings).
bool task_generates(Task task);

// Prompts a benchmark entry evaluates after limit and sample, from the benchmark table;
// perplexity: windows over kWikitextPlanTokens (eval/benchmark_table.h); calibration: twice
// the per-class draw (the first `limit` of each class, then `sample` of those, default 128).
std::int64_t prompt_count(const BenchmarkSpec& benchmark);

// A cell's index count (Cell::n_prompts): its prompts times the answers drawn per prompt
// (GenerationSettings::samples; index i is prompt i / samples).
std::int64_t cell_index_count(const BenchmarkSpec& benchmark, const std::optional<GenerationSettings>& generation);

// Whether `rule` matches the cell made of these parts; `generation` is null for tasks
// that do not generate (a rule on temperature or seed never matches those).
bool rule_matches(const ExcludeRule& rule, const ModelSpec& model, const KvSpec& kv, const BenchmarkSpec& benchmark,
                  const GenerationSettings* generation);

// All cells of the grid, with ids, labels, effective bits and prompt counts.
std::vector<Cell> expand_grid(const GridSpec& grid);

struct ExpansionCounts {
  std::int64_t cells = 0;                  // after exclusion
  std::vector<std::int64_t> rule_matches;  // per exclude rule: cells it matches (before exclusion)
};
// Walks the product without building cells or hashing (cheap enough for the parser).
ExpansionCounts count_cells(const GridSpec& grid);

}  // namespace kvsafe::orchestrator
