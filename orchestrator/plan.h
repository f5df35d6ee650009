#pragma once
// The plan of a grid (`kvsafe plan`): its cells grouped by model, the prompts and tokens
// they process, the GPU-hours and makespan the cost model (cost_model.h) estimates, and
// which cells a results database already holds as done.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "orchestrator/cell.h"
#include "orchestrator/cost_model.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::orchestrator {

struct PlanOptions {
  CostModelOptions cost;  // device and efficiencies
  int gpus = 1;           // GPUs the makespan is estimated for
};

struct ModelPlan {
  std::string name;
  double params = 0;         // parameter count used by the cost model
  int gpus_per_replica = 1;  // tensor-parallel width
  std::int64_t cells = 0;
  std::int64_t cells_done = 0;  // already done in the database
  std::int64_t prompts = 0;     // prompts (perplexity: windows) over all its cells
  double prefill_tokens = 0;
  double generated_tokens = 0;
  double gpu_seconds = 0;            // all cells, loads excluded
  double remaining_gpu_seconds = 0;  // cells not done yet
};

struct Plan {
  std::vector<ModelPlan> models;  // in grid order
  std::int64_t cells = 0;
  std::int64_t cells_done = 0;
  std::int64_t prompts = 0;
  double generated_tokens = 0;
  double gpu_seconds = 0;
  double remaining_gpu_seconds = 0;
  MakespanEstimate makespan;  // of the cells not done yet, on options.gpus GPUs
  int gpus = 1;
};

// The cost model's view of one cell.
CellWork cell_work(const GridSpec& grid, const Cell& cell);

// Throws InputError when a model has no parameter count (naming the model and the grid
// line to fix) or does not fit the planned GPUs.
Plan make_plan(const GridSpec& grid, const std::vector<Cell>& cells, const std::set<std::string>& done_cell_ids,
               const PlanOptions& options);

}  // namespace kvsafe::orchestrator
