#include "runner/diagnosis_derivation.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"
#include "eval/diagnosis.h"
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

namespace {

// The channel subsets of the paper's channel ablation (eval::channel_ablation_subsets) at the
// critical layer, named as the roles name them.
std::vector<orch::ChannelSubset> channel_subsets(const std::vector<float>& channel_max_abs, double outlier_fraction) {
  eval::ChannelAblationOptions options;
  options.outlier_fraction = outlier_fraction;
  const eval::ChannelAblationSubsets sets = eval::channel_ablation_subsets(channel_max_abs, options);
  const auto ints = [](const std::vector<std::int64_t>& ids) {
    std::vector<int> out(ids.begin(), ids.end());
    std::sort(out.begin(), out.end());
    return out;
  };
  std::vector<orch::ChannelSubset> out = {{"outliers", ints(sets.outliers.outliers)},
                                          {"random_matched", ints(sets.outliers.random_control)},
                                          {"non_outliers", ints(sets.non_outliers)},
                                          {"low_magnitude", ints(sets.low_magnitude)}};
  for (const auto& random : sets.random) {
    out.push_back({"random_" + std::to_string(random.percent) + "pct", ints(random.channels)});
  }
  return out;
}

}  // namespace

std::vector<orch::Cell> DiagnosisDeriver::derive(const std::string& completed) {
  if (!completed.empty() && !dependencies_.empty() && dependencies_.count(completed) == 0) return {};
  std::vector<orch::ModelDiagnosisFacts> facts;
  for (const std::string& name : options_.models) {
    orch::ModelDiagnosisFacts f;
    f.model = name;
    f.layers = layers_.at(name);
    report::DiagnosisReportOptions read;
    read.experiment_id = options_.experiment_id;
    read.model = name;
    read.min_baseline_refusals = 0;
    // NOTE: the stored roles may still carry an earlier grid's named layers; the grid now decides.
    read.critical_from_profile = grid_.diagnose.critical_layers.empty();
    const report::DiagnosisReport stored = report::read_diagnosis_report(store_.path(), read);
    for (const report::ModelDiagnosisReport& m : stored.models) {
      if (!m.critical || m.explicit_critical) continue;  // named layers: the planner reads the grid
      std::vector<int> ranked;
      for (const auto& layer : m.critical->ranked) ranked.push_back(static_cast<int>(layer.layer));
      f.critical = ranked;
      f.critical_from = m.critical_from;
    }
    for (const report::ModelDiagnosisReport& m : stored.models) {
      if (!m.diagnosis) continue;
      orch::PrescribedFix fix;
      fix.prescription = std::string(eval::to_string(m.diagnosis->prescription));
      for (const auto layer : m.diagnosis->layers) fix.layers.push_back(static_cast<int>(layer));
      fix.decided_from = m.diagnosis_from;
      f.fix = fix;
    }
    for (const report::ModelDiagnosisReport& m : stored.models) {
      // NOTE: the subsets are of the layer the planner will quantize: the grid's first
      // critical layer when it names them, else the ablation's.
      const int layer = !grid_.diagnose.critical_layers.empty() ? grid_.diagnose.critical_layers.front()
                        : f.critical && !f.critical->empty()    ? f.critical->front()
                                                                : -1;
      const auto found = m.channel_max_abs.find(layer);
      if (layer < 0 || found == m.channel_max_abs.end()) continue;
      f.channel_subsets = channel_subsets(found->second, grid_.diagnose.outlier_fraction);
      f.channels_from = {m.key_magnitudes_cell};
    }
    for (const report::ModelDiagnosisReport& m : stored.models) {
      // protection_sweep's naive baseline: every layer's key magnitudes, ranked by norm.
      if (m.channel_max_abs.empty() || static_cast<std::int64_t>(m.channel_max_abs.size()) != f.layers) continue;
      std::vector<std::vector<float>> per_layer;
      for (const auto& [layer, max_abs] : m.channel_max_abs) per_layer.push_back(max_abs);
      f.key_norm_layers = eval::layers_by_key_norm(per_layer);
      f.key_norm_from = {m.key_magnitudes_cell};
    }
    facts.push_back(std::move(f));
  }
  orch::DiagnosisPlan plan = orch::plan_diagnosis(grid_, facts, options_.tasks);
  waiting_ = plan.waiting;
  dependencies_.clear();
  for (const orch::DiagnosisRole& role : plan.roles) {
    if ((role.task == "baseline" && role.arm == "calibration") || role.task == "layer_ablation" ||
        role.arm == "key_magnitudes") {
      dependencies_.insert(role.cell_id);
    }
  }

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

std::int64_t DiagnosisDeriver::record_diagnoses() {
  report::DiagnosisReportOptions read;
  read.experiment_id = options_.experiment_id;
  read.critical_from_profile = grid_.diagnose.critical_layers.empty();
  std::int64_t recorded = 0;
  for (const report::ModelDiagnosisReport& m : report::read_diagnosis_report(store_.path(), read).models) {
    if (!m.diagnosis) continue;
    const auto base = std::find_if(m.arms.begin(), m.arms.end(), [](const report::DiagnosisArm& arm) {
      return arm.task == "baseline" && arm.arm == "calibration";
    });
    if (base == m.arms.end()) continue;
    const eval::Diagnosis& d = *m.diagnosis;
    db::DiagnosisRecord record{
        .model = m.model, .cell_id = base->cell_id, .mode = std::string(eval::to_string(d.mode)), .pcr = d.pcr};
    nlohmann::json critical = nlohmann::json::array();
    std::set<std::int64_t> critical_layers;
    if (m.critical) {
      for (const eval::LayerFlip& layer : m.critical->ranked) {
        critical.push_back(layer.layer);
        critical_layers.insert(layer.layer);
      }
    }
    nlohmann::json scores{{"critical_layers", critical},
                          {"critical_count", d.critical_count},
                          {"rule", d.rule},
                          {"decided_from", d.pcr ? m.diagnosis_from : std::vector<std::string>{}}};
    if (m.pcr && !std::isnan(m.pcr->lower)) scores["pcr_ci95"] = {m.pcr->lower, m.pcr->upper};
    record.scores_json = scores.dump();
    record.thresholds_json = nlohmann::json{
        {"critical_flip_threshold", d.critical_flip_threshold},
        {"pcr_low", d.pcr_low},
        {"pcr_high", d.pcr_high},
        {"bits", m.bits},
        {"model_layers",
         d.model_layers}}.dump();
    record.recommended_spec_json =
        nlohmann::json{{"prescription", std::string(eval::to_string(d.prescription))}, {"layers", d.layers}}.dump();
    for (const eval::LayerFlip& layer : m.profile) {
      if (std::isnan(layer.flip.rate)) continue;  // nothing refused: no rate to keep
      record.layers.push_back({.layer = layer.layer,
                               .flip_rate = layer.flip.rate,
                               .n = layer.flip.trials,
                               .critical = critical_layers.count(layer.layer) > 0});
    }
    store_.record_diagnosis(record);
    ++recorded;
  }
  return recorded;
}

}  // namespace kvsafe::runner
