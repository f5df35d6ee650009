#include "orchestrator/diagnosis_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "common/error.h"
#include "orchestrator/cell_identity.h"
#include "orchestrator/grid_expansion.h"

namespace kvsafe::orchestrator {
namespace {

constexpr int kGroup64 = 64;

KvSpec int_spec(int bits, bool symmetric, Granularity granularity) {
  KvSpec spec;
  spec.scheme = KvScheme::kInt;
  spec.bits = bits;
  spec.symmetric = symmetric;
  spec.key_granularity = granularity;
  spec.value_granularity = granularity;
  if (granularity == Granularity::kPerGroup) spec.group_size = kGroup64;
  return spec;
}

KvSpec on_layers(KvSpec spec, std::vector<int> layers) {
  spec.layers = std::move(layers);
  return spec;
}

// `rest` everywhere but `layers`, which get `rule`.
KvSpec with_rule(KvSpec rest, const KvSpec& rule_spec, std::vector<int> layers) {
  kernels::KvLayerRule rule;
  rule.layers = std::move(layers);
  std::sort(rule.layers.begin(), rule.layers.end());
  rule.scheme = rule_spec.scheme;
  rule.bits = rule_spec.bits;
  rule.symmetric = rule_spec.symmetric;
  rule.key_granularity = rule_spec.key_granularity;
  rule.value_granularity = rule_spec.value_granularity;
  rule.group_size = rule_spec.group_size;
  rest.layer_rules.push_back(std::move(rule));
  return rest;
}

KvSpec protecting(KvSpec rest, std::vector<int> layers) {
  std::sort(layers.begin(), layers.end());
  rest.protect_layers = std::move(layers);
  return rest;
}

std::vector<int> front_layers(std::int64_t count) {
  std::vector<int> layers;
  for (int l = 0; l < count; ++l) layers.push_back(l);
  return layers;
}

std::vector<int> back_layers(std::int64_t n, std::int64_t count) {
  std::vector<int> layers;
  for (auto l = n - count; l < n; ++l) layers.push_back(static_cast<int>(l));
  return layers;
}

class Planner {
 public:
  Planner(const GridSpec& grid, const ModelDiagnosisFacts& facts)
      : grid_(grid), facts_(facts), diagnose_(grid.diagnose) {
    model_ = grid.find_model(facts.model);
    KVSAFE_CHECK(model_ != nullptr, "diagnosis: model `", facts.model, "` is not in the grid ", grid.display_name);
    KVSAFE_CHECK(facts.layers > 0, "diagnosis: model `", facts.model, "` has no layers");
    KVSAFE_CHECK(!grid.generations.empty(), "diagnosis: the grid ", grid.display_name, " has no generation settings");
    generation_ = grid.generations.front();
    if (diagnose_.max_new_tokens) generation_.max_new_tokens = *diagnose_.max_new_tokens;
    // The paper's protocol decodes plainly: a grid's speculative decoding is its own experiment.
    generation_.speculative.reset();
    // ... and draws one answer per prompt: the diagnosis pairs prompts answer by answer.
    generation_.samples = 1;
    if (!diagnose_.critical_layers.empty()) {
      critical_ = diagnose_.critical_layers;
    } else if (facts.critical) {
      critical_ = *facts.critical;
      derived_from_ = facts.critical_from;
      std::sort(derived_from_.begin(), derived_from_.end());
    }
    for (const int layer : critical_.value_or(std::vector<int>{})) {
      KVSAFE_CHECK(layer < facts.layers, "diagnosis: critical layer ", layer, " of `", facts.model, "` is beyond its ",
                   facts.layers, " layers");
    }
  }

  void plan(DiagnosisTask task, DiagnosisPlan& out) {
    out_ = &out;
    const int b = static_cast<int>(diagnose_.bits);
    const std::int64_t n = facts_.layers;
    const KvSpec section5 = int_spec(b, true, Granularity::kPerTensor);
    switch (task) {
      case DiagnosisTask::kLayerAblation:
        baseline(kCalibration);
        for (int l = 0; l < n; ++l) {
          add(task, fmt::format("layer {}", l), {{"layer", l}}, kCalibration, on_layers(section5, {l}), {});
        }
        break;
      case DiagnosisTask::kCumulative:
        baseline(kCalibration);
        for (std::int64_t k = 1; k <= n; ++k) {
          add(task, fmt::format("front {}", k), {{"direction", "front"}, {"count", k}}, kCalibration,
              on_layers(section5, front_layers(k)), {});
          add(task, fmt::format("back {}", k), {{"direction", "back"}, {"count", k}}, kCalibration,
              on_layers(section5, back_layers(n, k)), {});
        }
        break;
      case DiagnosisTask::kPcr: {
        baseline(kCalibration);
        if (!has_critical(task)) break;
        const int c = critical_->front();
        // NOTE: the per-tensor arm is the layer-ablation cell of c itself (same settings, no
        // derived_from): the paper measures both on the same prompts, so it is reused.
        add(task, "per_tensor", {{"layer", c}}, kCalibration, on_layers(section5, {c}), {});
        add(task, "per_channel", {{"layer", c}}, kCalibration,
            on_layers(int_spec(b, true, Granularity::kPerChannel), {c}), derived_from_);
        break;
      }
      case DiagnosisTask::kPcrValidation:
        baseline(kTest);
        add(task, "per_tensor", {}, kTest, section5, {});
        add(task, "per_channel", {}, kTest, int_spec(b, true, Granularity::kPerChannel), {});
        add(task, "group64", {}, kTest, int_spec(b, true, Granularity::kPerGroup), {});
        break;
      case DiagnosisTask::kProtectionSweep:
        baseline(kTest);
        // The naive baseline (issue 22): the k layers with the largest keys instead of the k most
        // critical, from the channel ablation's key-magnitude pass (the same cell).
        add_role(std::string(to_string(task)), "key_magnitudes", nlohmann::json::object(), kCalibration, KvSpec{}, {},
                 Task::kKeyMagnitudes);
        if (!facts_.key_norm_layers) {
          out_->waiting.push_back(
              fmt::format("{}: protection_sweep's key-norm baseline waits for the key magnitudes", facts_.model));
        }
        for (const int m : diagnose_.mitigation_bits) {
          const KvSpec uniform = int_spec(m, false, Granularity::kPerToken);
          add(task, fmt::format("int{} unprotected", m), {{"bits", m}, {"k", 0}, {"protect", "none"}}, kTest, uniform,
              {});
          for (const int k : facts_.key_norm_layers ? diagnose_.protect_top_k : std::vector<int>{}) {
            if (k > static_cast<int>(facts_.key_norm_layers->size())) continue;
            const std::vector<int> top(facts_.key_norm_layers->begin(), facts_.key_norm_layers->begin() + k);
            const nlohmann::json layers = top;
            add(task, fmt::format("int{} fp16 key-norm top{}", m, k),
                {{"bits", m}, {"k", k}, {"protect", "fp16"}, {"ranked_by", "key_norm"}, {"layers", layers}}, kTest,
                protecting(uniform, top), facts_.key_norm_from);
          }
          if (!has_critical(task)) continue;
          for (const int k : diagnose_.protect_top_k) {
            if (k > static_cast<int>(critical_->size())) continue;
            const std::vector<int> top(critical_->begin(), critical_->begin() + k);
            const nlohmann::json layers = top;
            add(task, fmt::format("int{} fp16 top{}", m, k),
                {{"bits", m}, {"k", k}, {"protect", "fp16"}, {"layers", layers}}, kTest, protecting(uniform, top),
                derived_from_);
            add(task, fmt::format("int{} int8 top{}", m, k),
                {{"bits", m}, {"k", k}, {"protect", "int8"}, {"layers", layers}}, kTest,
                with_rule(uniform, int_spec(8, true, Granularity::kPerTensor), top), derived_from_);
          }
        }
        break;
      case DiagnosisTask::kChannelAblation:
        channel_ablation(section5);
        break;
      case DiagnosisTask::kMitigate:
        mitigate();
        break;
      case DiagnosisTask::kMitigation:
        baseline(kTest);
        for (const int m : diagnose_.mitigation_bits) {
          const KvSpec uniform = int_spec(m, false, Granularity::kPerToken);
          const KvSpec per_tensor = int_spec(m, false, Granularity::kPerTensor);
          const KvSpec per_channel = int_spec(m, false, Granularity::kPerChannel);
          const KvSpec group64 = int_spec(m, false, Granularity::kPerGroup);
          strategy(m, "uniform", uniform, {});
          strategy(m, "per_channel", per_channel, {});
          strategy(m, "group64", group64, {});
          if (!has_critical(task)) continue;
          const int c = critical_->front();
          strategy(m, "fp16_critical", protecting(per_tensor, {c}), derived_from_);
          strategy(m, "fp16_critical_clean", protecting(uniform, {c}), derived_from_);
          strategy(m, "perchannel_critical_ptensor", with_rule(per_tensor, per_channel, {c}), derived_from_);
          strategy(m, "perchannel_critical_group64", with_rule(group64, per_channel, {c}), derived_from_);
        }
        break;
    }
  }

 private:
  enum PromptSet { kCalibration, kTest };

  bool has_critical(DiagnosisTask task) {
    if (!critical_) {
      out_->waiting.push_back(
          fmt::format("{}: {} waits for the critical layers (layer_ablation)", facts_.model, to_string(task)));
      return false;
    }
    if (critical_->empty()) {
      out_->waiting.push_back(fmt::format("{}: {} has no critical layer to work on (no layer flipped >= {})",
                                          facts_.model, to_string(task), diagnose_.critical_flip_threshold));
      return false;
    }
    return true;
  }

  void channel_ablation(const KvSpec& section5) {
    const DiagnosisTask task = DiagnosisTask::kChannelAblation;
    baseline(kCalibration);
    add_role(std::string(to_string(task)), "key_magnitudes", nlohmann::json::object(), kCalibration, KvSpec{}, {},
             Task::kKeyMagnitudes);
    if (!has_critical(task)) return;
    const int c = critical_->front();
    if (!facts_.channel_subsets) {
      out_->waiting.push_back(fmt::format("{}: channel_ablation waits for the key magnitudes", facts_.model));
      return;
    }
    const int b = static_cast<int>(diagnose_.bits);
    add(task, "per_tensor", {{"layer", c}}, kCalibration, on_layers(section5, {c}), {});
    add(task, "per_channel", {{"layer", c}}, kCalibration, on_layers(int_spec(b, true, Granularity::kPerChannel), {c}),
        derived_from_);
    std::vector<std::string> from = derived_from_;
    from.insert(from.end(), facts_.channels_from.begin(), facts_.channels_from.end());
    std::sort(from.begin(), from.end());
    from.erase(std::unique(from.begin(), from.end()), from.end());
    for (const ChannelSubset& subset : *facts_.channel_subsets) {
      if (subset.channels.empty()) continue;  // an empty list would mean "every channel"
      KvSpec spec = on_layers(section5, {c});
      spec.quantize_channels = subset.channels;
      add(task, subset.name,
          {{"layer", c}, {"subset", subset.name}, {"channels", static_cast<std::int64_t>(subset.channels.size())}},
          kCalibration, spec, from);
    }
  }

  // The prescribed fix on the grid's own refusal benchmarks (the cells a user ran the grid for).
  void mitigate() {
    if (!facts_.fix) {
      out_->waiting.push_back(
          fmt::format("{}: mitigate waits for the failure mode (layer_ablation, pcr)", facts_.model));
      return;
    }
    const PrescribedFix& fix = *facts_.fix;
    if (fix.prescription == "full_fp16" || fix.prescription == "none") {
      out_->waiting.push_back(fmt::format("{}: mitigate has nothing quantized to verify (the prescription is {})",
                                          facts_.model, fix.prescription));
      return;
    }
    std::vector<std::string> from = fix.decided_from;
    std::sort(from.begin(), from.end());
    from.erase(std::unique(from.begin(), from.end()), from.end());
    std::map<std::string, int> seen;
    for (const BenchmarkSpec& benchmark : grid_.benchmarks) {
      if (benchmark.task != Task::kRefusal) continue;
      std::string name = benchmark.name + (benchmark.subset ? "/" + *benchmark.subset : std::string());
      if (const int n = seen[name]++; n > 0) name += "#" + std::to_string(n);
      const nlohmann::json where = {{"benchmark", name}, {"prompts", "grid"}};
      add_grid_role("baseline " + name, where, benchmark, KvSpec{}, {});
      for (const int m : diagnose_.mitigation_bits) {
        const KvSpec uniform = int_spec(m, false, Granularity::kPerToken);
        KvSpec fixed;
        if (fix.prescription == "fp16_critical_layer" || fix.prescription == "fp16_top_k") {
          fixed = protecting(uniform, fix.layers);
        } else if (fix.prescription == "per_channel_critical_group64_rest") {
          fixed = with_rule(int_spec(m, false, Granularity::kPerGroup), int_spec(m, false, Granularity::kPerChannel),
                            {fix.layers.front()});
        } else if (fix.prescription == "group64_all") {
          fixed = int_spec(m, false, Granularity::kPerGroup);
        } else {
          throw InputError("diagnosis: unknown prescription `" + fix.prescription + "`");
        }
        nlohmann::json detail = where;
        detail["bits"] = m;
        add_grid_role(fmt::format("int{} uniform {}", m, name), detail, benchmark, uniform, {});
        detail["prescription"] = fix.prescription;
        detail["layers"] = fix.layers;
        add_grid_role(fmt::format("int{} fix {}", m, name), detail, benchmark, fixed, from);
      }
    }
  }

  // A role of the mitigate task: a cell of one of the grid's own benchmark entries.
  void add_grid_role(const std::string& arm, nlohmann::json detail, const BenchmarkSpec& benchmark, const KvSpec& kv,
                     const std::vector<std::string>& derived_from) {
    Cell cell;
    cell.model = *model_;
    cell.model_index = static_cast<std::size_t>(model_ - grid_.models.data());
    cell.kv = canonicalize(kv);
    cell.benchmark = benchmark;
    cell.generation = grid_.generations.front();  // as the grid's own cells: the same ids where they coincide
    cell.derived_from = derived_from;
    record(std::string(to_string(DiagnosisTask::kMitigate)), arm, std::move(detail), std::move(cell));
  }

  void strategy(int bits, const char* name, const KvSpec& spec, const std::vector<std::string>& derived_from) {
    add(DiagnosisTask::kMitigation, fmt::format("int{} {}", bits, name), {{"bits", bits}, {"strategy", name}}, kTest,
        spec, derived_from);
  }

  // The baseline's detail carries the protocol's constants and the model's layer count, so the
  // report (report/diagnosis_report.h) reads from the database alone what decided each number.
  void baseline(PromptSet set) {
    const nlohmann::json detail = {{"model_layers", facts_.layers},
                                   {"bits", diagnose_.bits},
                                   {"critical_flip_threshold", diagnose_.critical_flip_threshold},
                                   {"pcr_low", diagnose_.pcr_low},
                                   {"pcr_high", diagnose_.pcr_high},
                                   {"outlier_fraction", diagnose_.outlier_fraction},
                                   {"explicit_critical_layers", diagnose_.critical_layers}};
    add_role("baseline", set == kCalibration ? "calibration" : "test", detail, set, KvSpec{}, {});
  }

  void add(DiagnosisTask task, const std::string& arm, nlohmann::json detail, PromptSet set, const KvSpec& kv,
           const std::vector<std::string>& derived_from) {
    add_role(std::string(to_string(task)), arm, std::move(detail), set, kv, derived_from);
  }

  void add_role(const std::string& task, const std::string& arm, nlohmann::json detail, PromptSet set, const KvSpec& kv,
                const std::vector<std::string>& derived_from, Task cell_task = Task::kRefusal) {
    Cell cell;
    cell.model = *model_;
    cell.model_index = static_cast<std::size_t>(model_ - grid_.models.data());
    cell.kv = canonicalize(kv);
    cell.benchmark = set == kCalibration ? calibration_benchmark(diagnose_) : test_benchmark(diagnose_);
    cell.benchmark.task = cell_task;
    if (task_generates(cell_task)) cell.generation = generation_;
    cell.derived_from = derived_from;
    detail["prompts"] = set == kCalibration ? "calibration" : "test";
    record(task, arm, std::move(detail), std::move(cell));
  }

  // Completes `cell` (id, label, bits, prompts) and records it under (task, arm).
  void record(const std::string& task, const std::string& arm, const nlohmann::json& detail, Cell cell) {
    cell.id = cell_id_of(canonical_json(cell));
    cell.kv_label = kv_label(cell.kv);
    EffectiveBitsOptions bits_options;
    bits_options.layers = static_cast<int>(facts_.layers);
    cell.effective_bits = effective_bits(cell.kv, bits_options);
    cell.n_prompts = cell_index_count(cell.benchmark, cell.generation);
    const auto key = std::make_tuple(facts_.model, task, arm);
    if (!roles_seen_.insert(key).second) return;  // a task planned twice (pcr and protection both add baselines)
    out_->roles.push_back(
        {.cell_id = cell.id, .model = facts_.model, .task = task, .arm = arm, .detail_json = detail.dump()});
    if (cells_seen_.insert(cell.id).second) out_->cells.push_back(std::move(cell));
  }

  const GridSpec& grid_;
  const ModelDiagnosisFacts& facts_;
  const DiagnoseSpec& diagnose_;
  const ModelSpec* model_ = nullptr;
  GenerationSettings generation_{};
  std::optional<std::vector<int>> critical_{};
  std::vector<std::string> derived_from_{};
  DiagnosisPlan* out_ = nullptr;
  std::set<std::tuple<std::string, std::string, std::string>> roles_seen_{};
  std::set<std::string> cells_seen_{};
};

}  // namespace

BenchmarkSpec calibration_benchmark(const DiagnoseSpec& diagnose) {
  BenchmarkSpec b;
  b.name = "custom";
  b.task = Task::kRefusal;
  b.limit = diagnose.calibration_prompts;
  return b;
}

BenchmarkSpec test_benchmark(const DiagnoseSpec& diagnose) {
  BenchmarkSpec b;
  b.name = "advbench";
  b.task = Task::kRefusal;
  b.limit = diagnose.test_prompts;
  return b;
}

std::vector<std::string> diagnosed_models(const GridSpec& grid) {
  if (!grid.diagnose.models.empty()) return grid.diagnose.models;
  std::vector<std::string> names;
  for (const ModelSpec& model : grid.models) names.push_back(model.name);
  return names;
}

DiagnosisPlan plan_diagnosis(const GridSpec& grid, const std::vector<ModelDiagnosisFacts>& facts,
                             const std::vector<DiagnosisTask>& tasks) {
  DiagnosisPlan plan;
  std::set<std::string> cell_ids;
  for (const ModelDiagnosisFacts& model : facts) {
    Planner planner(grid, model);
    DiagnosisPlan one;
    for (const DiagnosisTask task : tasks) planner.plan(task, one);
    for (Cell& cell : one.cells) {
      if (cell_ids.insert(cell.id).second) plan.cells.push_back(std::move(cell));
    }
    plan.roles.insert(plan.roles.end(), one.roles.begin(), one.roles.end());
    plan.waiting.insert(plan.waiting.end(), one.waiting.begin(), one.waiting.end());
  }
  return plan;
}

}  // namespace kvsafe::orchestrator

namespace kvsafe::orchestrator {

DiagnosisOutlook diagnosis_outlook(const GridSpec& grid,
                                   const std::vector<std::pair<std::string, std::int64_t>>& layers,
                                   const std::vector<DiagnosisTask>& tasks) {
  std::vector<ModelDiagnosisFacts> now;
  std::vector<ModelDiagnosisFacts> later;
  const int most = grid.diagnose.protect_top_k.empty()
                       ? 1
                       : *std::max_element(grid.diagnose.protect_top_k.begin(), grid.diagnose.protect_top_k.end());
  for (const auto& [model, n] : layers) {
    now.push_back({.model = model, .layers = n, .critical = std::nullopt, .critical_from = {}});
    std::vector<int> critical;
    for (int l = 0; l < std::max(1, most) && l < n; ++l) critical.push_back(l);
    ModelDiagnosisFacts guess;
    guess.model = model;
    guess.layers = n;
    guess.critical = critical;
    guess.critical_from = {"(to be derived)"};
    // NOTE: stand-ins with the real count of cells: the paper's nine channel subsets, and a fix
    // that quantizes (one cell per bit width and benchmark, as every quantizing fix has).
    guess.channel_subsets = std::vector<ChannelSubset>{};
    for (const char* name : {"outliers", "random_matched", "non_outliers", "low_magnitude", "random_1pct",
                             "random_5pct", "random_10pct", "random_25pct", "random_50pct"}) {
      guess.channel_subsets->push_back({.name = name, .channels = {static_cast<int>(guess.channel_subsets->size())}});
    }
    guess.channels_from = {"(to be derived)"};
    // A stand-in key-norm ranking that differs from the critical guess, so its cells count apart.
    guess.key_norm_layers = std::vector<int>{};
    for (std::int64_t l = n - 1; l >= 0; --l) guess.key_norm_layers->push_back(static_cast<int>(l));
    guess.key_norm_from = {"(key norms to be derived)"};
    guess.fix = PrescribedFix{.prescription = "group64_all", .layers = {}, .decided_from = {"(to be derived)"}};
    later.push_back(std::move(guess));
  }
  DiagnosisOutlook outlook;
  outlook.planned = plan_diagnosis(grid, now, tasks).cells;
  std::set<std::string> known;
  for (const Cell& cell : outlook.planned) known.insert(cell.id);
  for (Cell& cell : plan_diagnosis(grid, later, tasks).cells) {
    if (known.count(cell.id) == 0) outlook.to_be_derived.push_back(std::move(cell));
  }
  return outlook;
}

}  // namespace kvsafe::orchestrator
