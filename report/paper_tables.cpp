#include "report/paper_tables.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

namespace kvsafe::report {
namespace {

Cell rate_or_not_run(const std::optional<eval::Proportion>& p) {
  return p ? cell_rate(*p) : cell_not_run();
}

Cell number_or_not_run(const std::optional<double>& value, int decimals = 2) {
  return value ? cell_number(*value, decimals) : cell_not_run();
}

std::string layer_list(const std::vector<std::int64_t>& layers) {
  std::string out;
  for (const auto l : layers) out += (out.empty() ? "L" : ", L") + std::to_string(l);
  return out.empty() ? "none" : out;
}

Table taxonomy(const DiagnosisReport& report) {
  Table t{.name = "taxonomy",
          .caption =
              "Failure mode per model: critical layers (flip >= threshold, one layer quantized), PCR = 1 - "
              "flip(per-channel)/flip(per-tensor) at the top critical layer with a paired bootstrap 95% CI, "
              "and the prescribed fix.",
          .columns = {"Model", "Critical layers", "PCR", "PCR 95% CI", "Mode", "Fix"},
          .groups = {},
          .rows = {}};
  for (const ModelDiagnosisReport& m : report.models) {
    if (!m.critical && !m.pcr) continue;
    std::vector<std::int64_t> critical;
    if (m.critical) {
      for (const auto& layer : m.critical->ranked) critical.push_back(layer.layer);
    }
    t.rows.push_back(
        {cell_text(m.model), m.critical ? cell_text(layer_list(critical)) : cell_not_run(),
         m.pcr ? cell_number(m.pcr->pcr) : cell_not_run(),
         m.pcr && !std::isnan(m.pcr->lower) ? cell_text(fmt::format("[{:.2f}, {:.2f}]", m.pcr->lower, m.pcr->upper))
                                            : cell_not_run(),
         m.diagnosis ? cell_text(std::string(eval::to_string(m.diagnosis->mode))) : cell_not_run(),
         m.diagnosis ? cell_text(std::string(eval::to_string(m.diagnosis->prescription)) +
                                 (m.diagnosis->layers.empty() ? "" : " (" + layer_list(m.diagnosis->layers) + ")"))
                     : cell_not_run()});
  }
  return t;
}

Table layer_sensitivity(const DiagnosisReport& report) {
  Table t{.name = "individual_layer_sensitivity",
          .caption =
              "Conditional flip with one layer's KV cache quantized (per-tensor symmetric) on the calibration "
              "prompts; critical when flip >= the threshold.",
          .columns = {"Model", "Layer", "Flip", "KV MSE", "Critical"},
          .groups = {},
          .rows = {}};
  for (const ModelDiagnosisReport& m : report.models) {
    for (const eval::LayerFlip& layer : m.profile) {
      bool critical = false;
      if (m.critical) {
        for (const auto& c : m.critical->ranked) critical = critical || c.layer == layer.layer;
      }
      t.rows.push_back({cell_text(m.model), cell_number(static_cast<double>(layer.layer), 0), cell_rate(layer.flip),
                        std::isnan(layer.kv_mse) ? cell_not_run() : cell_number(layer.kv_mse, 4),
                        cell_text(critical ? "yes" : "no")});
    }
  }
  return t;
}

Table pcr_framework(const DiagnosisReport& report) {
  Table t{
      .name = "pcr_framework",
      .caption =
          "PCR at the critical layer (calibration prompts) against group-64 on the test prompts (every "
          "layer quantized): reduction = 1 - flip(group-64)/flip(per-tensor); check = (PCR > 0.5 and "
          "reduction > 0.3) or (PCR < 0.3 and reduction < 0.1).",
      .columns = {"Model", "Critical layer", "PCR", "Per-tensor flip", "Group-64 flip", "Group-64 reduction", "Check"},
      .groups = {},
      .rows = {}};
  for (const ModelDiagnosisReport& m : report.models) {
    if (!m.pcr && !m.test_per_tensor) continue;
    Cell check = cell_not_run();
    if (m.pcr && m.group64_reduction && !std::isnan(m.pcr->pcr) && !std::isnan(*m.group64_reduction)) {
      check = cell_text(eval::group64_prediction_holds(m.pcr->pcr, *m.group64_reduction) ? "yes" : "no");
    }
    t.rows.push_back({cell_text(m.model), m.pcr_layer ? cell_text("L" + std::to_string(*m.pcr_layer)) : cell_not_run(),
                      m.pcr ? cell_number(m.pcr->pcr) : cell_not_run(), rate_or_not_run(m.test_per_tensor),
                      rate_or_not_run(m.test_group64), number_or_not_run(m.group64_reduction), check});
  }
  return t;
}

Table channel_ablation(const DiagnosisReport& report) {
  Table t{.name = "channel_ablation_all",
          .caption =
              "Conditional flip with only a subset of the critical layer's channels quantized (per-tensor "
              "symmetric over the subset); outliers = max |K| >= the 95th percentile; causal ratio = "
              "flip(outliers)/flip(random matched).",
          .columns = {"Model", "Layer", "Subset", "Channels", "Flip"},
          .groups = {},
          .rows = {}};
  for (const ModelDiagnosisReport& m : report.models) {
    for (const ChannelAblationRow& row : m.channel_ablation) {
      t.rows.push_back({cell_text(m.model), cell_text("L" + std::to_string(m.channel_layer.value_or(-1))),
                        cell_text(row.subset),
                        row.channels == 0 ? cell_text("all") : cell_number(static_cast<double>(row.channels), 0),
                        cell_rate(row.flip)});
    }
    if (m.causal_ratio) {
      t.rows.push_back({cell_text(m.model), cell_text("L" + std::to_string(m.channel_layer.value_or(-1))),
                        cell_text("causal ratio"), cell_text(""), cell_number(*m.causal_ratio)});
    }
  }
  return t;
}

Table protection(const DiagnosisReport& report) {
  Table t{.name = "protection_sweep",
          .caption =
              "The top-k critical layers kept at FP16 or 8-bit per-tensor, the rest per-token asymmetric, on "
              "the test prompts: recovery = 1 - flip/flip(unprotected); overhead in layers (the paper's) and "
              "in KV bytes (from effective bits).",
          .columns = {"Model", "Bits", "Protection", "k", "Flip", "Recovery", "Layer overhead", "KV byte overhead"},
          .groups = {},
          .rows = {}};
  for (const ModelDiagnosisReport& m : report.models) {
    for (const ProtectionRow& p : m.protection) {
      t.rows.push_back({cell_text(m.model), cell_number(p.bits, 0), cell_text(p.protect),
                        cell_number(static_cast<double>(p.k), 0), cell_rate(p.flip),
                        p.k == 0 ? cell_text("-") : cell_number(p.recovery), cell_percent(p.layer_overhead),
                        cell_percent(p.byte_overhead)});
    }
  }
  return t;
}

Table mitigation_main(const DiagnosisReport& report) {
  Table t{.name = "mitigation_main",
          .caption =
              "Refusal on the test prompts: FP16, uniform per-token asymmetric, and mixed (the critical layer "
              "at FP16, the rest per-tensor: the paper's fp16_critical); recovery = (mixed - uniform) / (FP16 "
              "- uniform), n/a when nothing was lost.",
          .columns = {"Model", "Bits", "FP16", "Uniform", "Mixed", "Recovery"},
          .groups = {},
          .rows = {}};
  for (const ModelDiagnosisReport& m : report.models) {
    std::map<int, const MitigationRow*> uniform, mixed;
    for (const MitigationRow& row : m.mitigation) {
      if (row.strategy == "uniform") uniform[row.bits] = &row;
      if (row.strategy == "fp16_critical") mixed[row.bits] = &row;
    }
    for (const auto& [bits, u] : uniform) {
      const auto x = mixed.find(bits);
      t.rows.push_back({cell_text(m.model), cell_number(bits, 0),
                        rate_or_not_run(m.test_refusal ? std::optional(m.test_refusal->rate) : std::nullopt),
                        cell_rate(u->refusal), x == mixed.end() ? cell_not_run() : cell_rate(x->second->refusal),
                        x == mixed.end() ? cell_not_run() : cell_number(x->second->recovery)});
    }
  }
  return t;
}

}  // namespace

const std::vector<PaperTableInfo>& paper_tables() {
  static const std::vector<PaperTableInfo> tables = {
      {"custom_all_models", "not built yet: per-KV-label rates of the custom set (issue 19)", false},
      {"advbench_main", "advbench refusal cells of the per-token asymmetric sweep", true},
      {"multi_model_ppl", "perplexity cells of the per-token asymmetric sweep and full precision", true},
      {"std_metrics", "perplexity cells of the per-token asymmetric sweep and full precision", true},
      {"mse_phase", "not built yet (issue 19)", false},
      {"phase_thresholds", "refusal cells of the per-token asymmetric sweep (int<b>-ptok-asym)", true},
      {"cross_suite_compare", "not built yet (issue 19)", false},
      {"seeds", "not built yet: needs issue 22's seed experiments", false},
      {"mitigation_main", "diagnose: mitigation (test prompts)", true},
      {"individual_layer_sensitivity", "diagnose: layer_ablation", true},
      {"cross_model_layer_summary", "not built yet (issue 19)", false},
      {"channel_ablation_all", "diagnose: channel_ablation", true},
      {"pcr_framework", "diagnose: pcr and pcr_validation", true},
      {"taxonomy", "diagnose: layer_ablation and pcr", true},
      {"decision_tree", "not built yet: the paper's fixed table (issue 19)", false},
      {"protection_sweep", "diagnose: protection_sweep", true},
      {"protection_comparison", "not built yet (issue 19)", false},
      {"protocol_validation", "not built yet: needs mitigate: auto rows per model (issue 19)", false},
      {"refusal_direction_erosion", "calibration cells (task refusal_direction); not in the paper", true},
      {"refusal_direction_prediction", "calibration cells and refusal cells of the same quantizers; not in the paper",
       true},
  };
  return tables;
}

std::string table_model_name(const std::string& model, const std::string& steered) {
  return steered.empty() ? model : model + " (steered, not aligned)";
}

std::vector<Table> diagnosis_tables(const DiagnosisReport& report) {
  std::vector<Table> out;
  for (Table t : {mitigation_main(report), layer_sensitivity(report), channel_ablation(report), pcr_framework(report),
                  taxonomy(report), protection(report)}) {
    if (!t.rows.empty()) out.push_back(std::move(t));
  }
  return out;
}

}  // namespace kvsafe::report
