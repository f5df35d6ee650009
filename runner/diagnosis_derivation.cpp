#include "runner/diagnosis_derivation.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/error.h"
#include "modelfile/weights_loader.h"
#include "orchestrator/diagnosis_plan.h"
#include "orchestrator/registration.h"
#include "report/diagnosis_report.h"
#include "runner/run_preparation.h"

namespace kvsafe::runner {

namespace orch = orchestrator;

std::int64_t model_layer_count(const orch::ModelSpec& model) {
  if (model.layers) return *model.layers;
  // NOTE: opening maps the file and parses its header only; no tensor is read.
  return engine::WeightsLoader::open(model.path)->config().num_layers;
}

DiagnosisDeriver::DiagnosisDeriver(db::Store& store, const orch::GridSpec& grid, DiagnosisDerivationOptions options)
    : store_(store), grid_(grid), options_(std::move(options)) {
  for (const std::string& name : options_.models) {
    const orch::ModelSpec* model = grid.find_model(name);
    KVSAFE_CHECK(model != nullptr, "diagnose: model `", name, "` is not in the grid ", grid.display_name);
    layers_[name] = model_layer_count(*model);
  }
}

std::vector<orch::Cell> DiagnosisDeriver::derive() {
  std::vector<orch::ModelDiagnosisFacts> facts;
  for (const std::string& name : options_.models) {
    orch::ModelDiagnosisFacts f{.model = name, .layers = layers_.at(name), .critical = {}, .critical_from = {}};
    const report::DiagnosisReport stored = report::read_diagnosis_report(
        store_.path(), {.experiment_id = options_.experiment_id, .model = name, .min_baseline_refusals = 0});
    for (const report::ModelDiagnosisReport& m : stored.models) {
      if (!m.critical || m.explicit_critical) continue;
      std::vector<int> ranked;
      for (const auto& layer : m.critical->ranked) ranked.push_back(static_cast<int>(layer.layer));
      f.critical = ranked;
      f.critical_from = m.critical_from;
    }
    facts.push_back(std::move(f));
  }
  orch::DiagnosisPlan plan = orch::plan_diagnosis(grid_, facts, options_.tasks);
  waiting_ = plan.waiting;

  std::vector<db::CellRecord> records;
  for (const orch::Cell& cell : plan.cells) records.push_back(orch::to_cell_record(cell));
  const db::RegisterResult registered =
      store_.register_cells(options_.experiment_id, records, grid_.execution.shard_size);
  std::vector<orch::Cell> unregistered_prompts;
  for (const orch::Cell& cell : plan.cells) {
    if (prompts_registered_.insert(cell.benchmark.name).second) unregistered_prompts.push_back(cell);
  }
  if (!unregistered_prompts.empty()) register_benchmark_prompts(store_, unregistered_prompts, options_.data_dir);
  std::vector<db::DiagnosisRoleRecord> roles;
  for (const orch::DiagnosisRole& role : plan.roles) {
    roles.push_back({.model = role.model,
                     .task = role.task,
                     .arm = role.arm,
                     .cell_id = role.cell_id,
                     .detail_json = role.detail_json});
  }
  store_.register_diagnosis_roles(options_.experiment_id, roles);
  if (registered.new_cells > 0) {
    spdlog::info("diagnose: {} new cell(s) planned ({} in all){}", registered.new_cells, plan.cells.size(),
                 plan.waiting.empty() ? "" : "; " + std::to_string(plan.waiting.size()) + " task(s) still waiting");
  }
  for (const std::string& line : plan.waiting) spdlog::debug("diagnose: {}", line);
  return plan.cells;
}

}  // namespace kvsafe::runner
