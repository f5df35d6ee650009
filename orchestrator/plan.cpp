#include "orchestrator/plan.h"

#include <map>

#include "common/error.h"
#include "orchestrator/grid_expansion.h"

namespace kvsafe::orchestrator {

CellWork cell_work(const GridSpec& grid, const Cell& cell) {
  const std::optional<double> params = cell.model.parameter_count();
  KVSAFE_CHECK(params.has_value(), grid.display_name, ":", cell.model.where.line, ":", cell.model.where.column,
               ": models: model '", cell.model.name,
               "' has no parameter count and none can be read from its name; add `params:` (e.g. params: 7.24B)");
  CellWork work{
      .model = cell.model.name, .params = *params, .prompts = cell.n_prompts, .shard_size = grid.execution.shard_size};
  if (cell.generation.has_value()) {
    work.max_new_tokens = cell.generation->max_new_tokens;
    work.batch_size = cell.generation->batch_size;
    if (const auto& speculative = cell.generation->speculative) {
      // A self-draft's weights are the target's; another draft's from its count (else the target's).
      work.draft_params =
          speculative->draft.name == cell.model.name ? *params : speculative->draft.parameter_count().value_or(*params);
      work.draft_tokens = speculative->draft_tokens;
    }
  }
  if (cell.task() == Task::kPerplexity) {
    // Every window is one prefill of (at most) max_length tokens.
    work.scored_tokens = cell.n_prompts * cell.benchmark.max_length;
  }
  return work;
}

Plan make_plan(const GridSpec& grid, const std::vector<Cell>& cells, const std::set<std::string>& done_cell_ids,
               const PlanOptions& options) {
  Plan plan;
  plan.gpus = options.gpus;
  std::map<std::string, std::size_t> model_row;
  for (const ModelSpec& model : grid.models) {
    model_row[model.name] = plan.models.size();
    plan.models.push_back(ModelPlan{.name = model.name, .params = model.parameter_count().value_or(0)});
  }
  std::vector<CellWork> remaining;
  for (const Cell& cell : cells) {
    const CellWork work = cell_work(grid, cell);
    const CellCost cost = estimate_cell(work, options.cost);
    ModelPlan& row = plan.models[model_row.at(cell.model.name)];
    const bool done = done_cell_ids.count(cell.id) > 0;
    row.gpus_per_replica = cost.gpus;
    row.cells += 1;
    row.cells_done += done ? 1 : 0;
    row.prompts += cell.n_prompts;
    row.prefill_tokens += cost.prefill_tokens;
    row.generated_tokens += cost.generated_tokens;
    row.gpu_seconds += cost.gpu_seconds;
    if (!done) {
      row.remaining_gpu_seconds += cost.gpu_seconds;
      remaining.push_back(work);
    }
  }
  for (const ModelPlan& row : plan.models) {
    plan.cells += row.cells;
    plan.cells_done += row.cells_done;
    plan.prompts += row.prompts;
    plan.generated_tokens += row.generated_tokens;
    plan.gpu_seconds += row.gpu_seconds;
    plan.remaining_gpu_seconds += row.remaining_gpu_seconds;
  }
  if (!remaining.empty()) plan.makespan = estimate_makespan(remaining, options.gpus, options.cost);
  return plan;
}

}  // namespace kvsafe::orchestrator
