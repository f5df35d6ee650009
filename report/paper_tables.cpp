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
              "in KV bytes (from effective bits). \"fp16, key-norm\" is the naive baseline: the k layers with "
              "the largest keys (L2 norm of the per-channel max |K|) at FP16 instead of the critical ones.",
          .columns = {"Model", "Bits", "Protection", "k", "Flip", "Recovery", "Layer overhead", "KV byte overhead"},
          .groups = {},
          .rows = {}};
  for (const ModelDiagnosisReport& m : report.models) {
    for (const ProtectionRow& p : m.protection) {
      t.rows.push_back({cell_text(m.model), cell_number(p.bits, 0),
                        cell_text(p.ranked_by == "key_norm" ? p.protect + ", key-norm" : p.protect),
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

// The paper's cross_model_layer_summary: one line per model from its layer-ablation profile.
Table cross_model_layer_summary(const DiagnosisReport& report) {
  Table t{.name = "cross_model_layer_summary",
          .caption =
              "Per model, from quantizing one layer at a time on the calibration prompts: layers profiled, "
              "how many reach the critical threshold, the most sensitive layer and the mean flip over the "
              "profiled layers (layers whose baseline refused nothing left out).",
          .columns = {"Model", "Layers profiled", "Critical (>= threshold)", "Critical layers", "Most sensitive",
                      "Its flip", "Mean flip", "Hyper-vulnerable"},
          .groups = {},
          .rows = {}};
  for (const ModelDiagnosisReport& m : report.models) {
    if (m.profile.empty()) continue;
    const eval::LayerFlip* worst = nullptr;
    double sum = 0;
    std::int64_t counted = 0;
    for (const eval::LayerFlip& layer : m.profile) {
      if (std::isnan(layer.flip.rate)) continue;
      sum += layer.flip.rate;
      ++counted;
      if (worst == nullptr || layer.flip.rate > worst->flip.rate) worst = &layer;
    }
    std::vector<std::int64_t> critical;
    if (m.critical) {
      for (const auto& layer : m.critical->ranked) critical.push_back(layer.layer);
    }
    t.rows.push_back(
        {cell_text(m.model),
         cell_text(fmt::format("{} of {}", m.profile.size(), m.model_layers > 0 ? m.model_layers : m.profile_layers)),
         m.critical ? cell_number(static_cast<double>(critical.size()), 0) : cell_not_run(),
         m.critical ? cell_text(layer_list(critical)) : cell_not_run(),
         worst != nullptr ? cell_text("L" + std::to_string(worst->layer))
                          : cell_text(m.calibration_refusal ? fmt::format("undefined: the baseline refused {} of {}",
                                                                          m.calibration_refusal->rate.successes,
                                                                          m.calibration_refusal->rate.trials)
                                                            : std::string("undefined: the baseline refused nothing")),
         worst != nullptr ? cell_rate(worst->flip) : cell_text("undefined"),
         counted > 0 ? cell_percent(sum / static_cast<double>(counted)) : cell_text("undefined"),
         m.critical ? cell_text(m.critical->hyper_vulnerable ? "yes" : "no") : cell_not_run()});
  }
  return t;
}

// The paper's decision_tree, with this database's models placed in it: the rows of
// eval::diagnose in the order they are tried, the thresholds as the diagnosis applied them, and
// each model whose stored diagnosis fired that row (with its PCR and critical-layer count).
Table decision_tree(const DiagnosisReport& report) {
  Table t{.name = "decision_tree",
          .caption =
              "The decision tree (first row that applies wins) with the models this database diagnosed at "
              "each row: PCR = 1 - flip(per-channel)/flip(per-tensor) at the top critical layer.",
          .columns = {"Row", "Condition", "Mode", "Prescribed fix", "Models here"},
          .groups = {},
          .rows = {}};
  const ModelDiagnosisReport* first = nullptr;
  for (const ModelDiagnosisReport& m : report.models) {
    if (m.diagnosis && first == nullptr) first = &m;
  }
  if (first == nullptr) return t;
  const double low = first->pcr_low, high = first->pcr_high, threshold = first->critical_flip_threshold;
  struct Branch {
    eval::FailureMode mode;
    eval::Prescription fix;
    std::string condition;
  };
  const std::vector<Branch> branches = {
      {eval::FailureMode::kHyperVulnerable, eval::Prescription::kFullFp16,
       fmt::format("every layer alone flips >= {:.0f}%", 100 * threshold)},
      {eval::FailureMode::kNoCriticalLayer, eval::Prescription::kNone,
       fmt::format("no layer alone flips >= {:.0f}%", 100 * threshold)},
      {eval::FailureMode::kMultiLayerDilution, eval::Prescription::kFp16TopK,
       fmt::format("two or more layers flip >= {:.0f}%", 100 * threshold)},
      {eval::FailureMode::kOutlierAsSafety, eval::Prescription::kFp16CriticalLayer,
       fmt::format("PCR < {:.0f}%", 100 * low)},
      {eval::FailureMode::kTransitional, eval::Prescription::kPerChannelCriticalGroup64Rest,
       fmt::format("{:.0f}% <= PCR <= {:.0f}%", 100 * low, 100 * high)},
      {eval::FailureMode::kOutlierCrushesSafety, eval::Prescription::kGroup64All,
       fmt::format("PCR > {:.0f}%", 100 * high)},
  };
  int number = 0;
  for (const Branch& branch : branches) {
    std::string models;
    for (const ModelDiagnosisReport& m : report.models) {
      if (!m.diagnosis || m.diagnosis->mode != branch.mode) continue;
      std::string numbers = fmt::format("{} critical", m.diagnosis->critical_count);
      if (m.diagnosis->pcr) numbers = fmt::format("PCR {:.2f}, ", *m.diagnosis->pcr) + numbers;
      // NOTE: each model sits where its own stored diagnosis put it; a grid with other thresholds
      // than the condition column's says which it used.
      if (m.pcr_low != low || m.pcr_high != high || m.critical_flip_threshold != threshold) {
        numbers += fmt::format("; its thresholds: PCR {:.0f}%/{:.0f}%, flip {:.0f}%", 100 * m.pcr_low, 100 * m.pcr_high,
                               100 * m.critical_flip_threshold);
      }
      models += (models.empty() ? "" : "; ") + m.model + " (" + numbers + ")";
    }
    t.rows.push_back({cell_number(++number, 0), cell_text(branch.condition),
                      cell_text(std::string(eval::to_string(branch.mode))),
                      cell_text(std::string(eval::to_string(branch.fix))), cell_text(models.empty() ? "-" : models)});
  }
  return t;
}

// The paper's protection_comparison: FP16 against 8-bit protection of the same top-k layers, side
// by side, with what each costs in KV bytes.
Table protection_comparison(const DiagnosisReport& report) {
  Table t{.name = "protection_comparison",
          .caption =
              "The top-k critical layers kept at FP16 vs at 8-bit per-tensor (the rest per-token asymmetric) on "
              "the test prompts: flip, recovery = 1 - flip/flip(unprotected), and the KV bytes each adds.",
          .columns = {"Model", "Bits", "k", "FP16 flip", "FP16 recovery", "FP16 KV bytes", "8-bit flip",
                      "8-bit recovery", "8-bit KV bytes"},
          .groups = {{"", 3}, {"FP16 protection", 3}, {"8-bit protection", 3}},
          .rows = {}};
  for (const ModelDiagnosisReport& m : report.models) {
    std::map<std::pair<int, std::int64_t>, std::map<std::string, const ProtectionRow*>> by_k;
    for (const ProtectionRow& p : m.protection) {
      // The critical layers only: the key-norm baseline is protection_sweep's comparison.
      if (p.k > 0 && p.ranked_by == "critical") by_k[{p.bits, p.k}][p.protect] = &p;
    }
    for (const auto& [key, rows] : by_k) {
      if (!rows.contains("fp16") || !rows.contains("int8")) continue;
      std::vector<Cell> cells{cell_text(m.model), cell_number(key.first, 0),
                              cell_number(static_cast<double>(key.second), 0)};
      for (const char* protect : {"fp16", "int8"}) {
        const ProtectionRow& p = *rows.at(protect);
        cells.push_back(cell_rate(p.flip));
        cells.push_back(cell_number(p.recovery));
        cells.push_back(cell_percent(p.byte_overhead));
      }
      t.rows.push_back(std::move(cells));
    }
  }
  return t;
}

// The paper's protocol_validation: the prescribed fix (mitigate: auto) verified on a refusal
// benchmark, per model and bit width: the flip of the uniform quantizer and of the fix, the
// refusal recovered, and the fraction of layers the fix keeps at FP16.
Table protocol_validation(const DiagnosisReport& report) {
  Table t{
      .name = "protocol_validation",
      .caption =
          "The diagnosed fix verified: conditional flip with every layer quantized uniformly (per-token "
          "asymmetric) and with the prescribed fix; recovery = (refusal_fix - refusal_uniform) / "
          "(refusal_FP16 - refusal_uniform), n/a when nothing was lost; FP16 layers = layers the fix keeps "
          "exact / model layers.",
      .columns = {"Model", "PCR", "Fix", "Benchmark", "Bits", "Uniform flip", "Fixed flip", "Recovery", "FP16 layers"},
      .groups = {},
      .rows = {}};
  for (const ModelDiagnosisReport& m : report.models) {
    for (const MitigateRow& row : m.mitigate) {
      Cell fp16_layers = cell_not_run();
      if (m.diagnosis && m.model_layers > 0) {
        const bool keeps_fp16 = m.diagnosis->prescription == eval::Prescription::kFp16CriticalLayer ||
                                m.diagnosis->prescription == eval::Prescription::kFp16TopK ||
                                m.diagnosis->prescription == eval::Prescription::kFullFp16;
        const double layers = keeps_fp16 ? static_cast<double>(m.diagnosis->layers.size()) : 0.0;
        fp16_layers = cell_percent(layers / static_cast<double>(m.model_layers));
      }
      const bool complete = row.refusal_fp16 && row.refusal_uniform && row.refusal_fix;
      t.rows.push_back({cell_text(m.model), m.pcr ? cell_number(m.pcr->pcr) : cell_not_run(),
                        cell_text(row.prescription), cell_text(row.benchmark), cell_number(row.bits, 0),
                        rate_or_not_run(row.flip_uniform), rate_or_not_run(row.flip_fix),
                        complete ? cell_number(row.recovery) : cell_not_run(), fp16_layers});
    }
  }
  return t;
}

}  // namespace

const std::vector<PaperTableInfo>& paper_tables() {
  static const std::vector<PaperTableInfo> tables = {
      {"custom_all_models", "custom refusal cells of the per-token asymmetric sweep (subsets by prompt category)",
       true},
      {"advbench_main", "advbench refusal cells of the per-token asymmetric sweep", true},
      {"multi_model_ppl", "perplexity cells of the per-token asymmetric sweep and full precision", true},
      {"std_metrics", "perplexity cells of the per-token asymmetric sweep and full precision", true},
      {"mse_phase", "refusal cells of the per-token asymmetric sweep with KV MSE columns", true},
      {"phase_thresholds", "refusal cells of the per-token asymmetric sweep (int<b>-ptok-asym)", true},
      {"cross_suite_compare", "refusal cells of the per-token asymmetric sweep on two or more benchmarks", true},
      {"seeds", "refusal cells run at two or more generation seeds (a seed sweep)", true},
      {"kv_asymmetry", "refusal cells quantizing keys only (value_bits 16) or values only (bits 16)", true},
      {"mitigation_main", "diagnose: mitigation (test prompts)", true},
      {"specdecode_flip", "refusal cells with generation.speculative (beside the plain greedy cells of their settings)",
       true},
      {"individual_layer_sensitivity", "diagnose: layer_ablation", true},
      {"cross_model_layer_summary", "diagnose: layer_ablation", true},
      {"channel_ablation_all", "diagnose: channel_ablation", true},
      {"pcr_framework", "diagnose: pcr and pcr_validation", true},
      {"taxonomy", "diagnose: layer_ablation and pcr", true},
      {"decision_tree", "diagnose: a stored diagnosis (layer_ablation and pcr)", true},
      {"protection_sweep", "diagnose: protection_sweep", true},
      {"protection_comparison", "diagnose: protection_sweep with both fp16 and int8 protection", true},
      {"protocol_validation", "diagnose: mitigate: auto (the prescribed fix on a refusal benchmark)", true},
      {"over_refusal", "over_refusal cells (XSTest); not in the paper's list", true},
      {"ifeval_tradeoff", "ifeval cells, beside the same model's refusal cells; not in the paper's list", true},
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
  for (Table t : {mitigation_main(report), layer_sensitivity(report), cross_model_layer_summary(report),
                  channel_ablation(report), pcr_framework(report), taxonomy(report), decision_tree(report),
                  protection(report), protection_comparison(report), protocol_validation(report)}) {
    if (!t.rows.empty()) out.push_back(std::move(t));
  }
  return out;
}

}  // namespace kvsafe::report
