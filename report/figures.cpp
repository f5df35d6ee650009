#include "report/figures.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "report/paper_tables.h"
#include "report/svg_chart.h"
#include "report/sweep_cells.h"

namespace kvsafe::report {
namespace {

constexpr double kNotRun = std::numeric_limits<double>::quiet_NaN();

ChartPoint rate_point(double x, const eval::Proportion& p) {
  if (p.trials == 0) return {.x = x, .y = kNotRun, .low = {}, .high = {}};
  return {.x = x, .y = p.rate, .low = p.lower, .high = p.upper};
}

std::string series_name(const SummaryGroup& group) {
  std::string name = table_model_name(group.model, group.steered) + " / " + group.benchmark;
  if (!group.subset.empty()) name += "/" + group.subset;
  return name;
}

std::vector<ReferenceLine> regime_lines() {
  return {{0.05, "safe < 5%"}, {0.5, "collapse >= 50%"}, {0.8, "complete >= 80%"}};
}

std::string left_out_sentence(const std::vector<std::string>& left_out) {
  if (left_out.empty()) return "";
  std::string out = " Left out: ";
  for (std::size_t i = 0; i < left_out.size(); ++i) out += (i > 0 ? "; " : "") + left_out[i];
  return out + ".";
}

// A figure with nothing defined to draw: no SVG, the reason in its caption.
ReportFigure not_drawn(const std::string& name, const std::string& why) {
  return ReportFigure{.name = name, .caption = "Not drawn: " + why, .svg = ""};
}

// A chart of rates over the bit widths of the sweep: y a fraction in [0, 1] printed as percent,
// x the bits from wide to narrow on a log2 axis (8, 4, 2 evenly spaced).
LineChart rates_by_bits(std::string name, std::string title, std::string y_label) {
  LineChart chart;
  chart.name = std::move(name);
  chart.title = std::move(title);
  chart.x_label = "bits";
  chart.y_label = std::move(y_label);
  chart.x_reversed = true;
  chart.x_log = true;
  chart.y_percent = true;
  chart.y_min = 0.0;
  chart.y_max = 1.0;
  return chart;
}

std::optional<ReportFigure> phase_transition_flip(const RunSummary& summary) {
  LineChart chart = rates_by_bits("phase_transition_flip", "Conditional flip vs KV bits", "conditional flip");
  chart.reference_lines = regime_lines();
  std::vector<std::string> left_out;
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "refusal") continue;
    const auto sweep = detail::refusal_sweep(group);
    if (sweep.empty()) continue;
    if (!group.flip_undefined.empty()) {
      left_out.push_back(series_name(group) + " (" + group.flip_undefined + ")");
      continue;
    }
    ChartSeries series{.name = series_name(group), .points = {}};
    for (const auto& [bits, row] : sweep) series.points.push_back(rate_point(bits, *row->flip));
    chart.series.push_back(std::move(series));
  }
  if (chart.series.empty() && left_out.empty()) return std::nullopt;
  if (chart.series.empty()) return not_drawn(chart.name, "no line has a defined flip." + left_out_sentence(left_out));
  return ReportFigure{.name = chart.name,
                      .caption =
                          "Conditional flip (refused at full precision, complied quantized) per bit width of "
                          "the per-token asymmetric sweep, with Wilson 95% bands and the paper's regimes." +
                          left_out_sentence(left_out),
                      .svg = render_svg(chart)};
}

std::optional<ReportFigure> phase_transition_refusal(const RunSummary& summary) {
  LineChart chart = rates_by_bits("phase_transition_refusal", "Refusal rate vs KV bits", "refusal rate");
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "refusal") continue;
    ChartSeries series{.name = series_name(group), .points = {}};
    for (const KvSummaryRow& row : group.rows) {
      if (row.baseline) {
        series.points.push_back(rate_point(16, row.refusal.rate));
      } else if (const auto bits = detail::sweep_bits(row.kv_label)) {
        series.points.push_back(rate_point(*bits, row.refusal.rate));
      }
    }
    if (series.points.size() >= 2) chart.series.push_back(std::move(series));
  }
  if (chart.series.empty()) return std::nullopt;
  return ReportFigure{.name = chart.name,
                      .caption =
                          "Refusal rate on the harmful prompts per bit width (16 = full precision; per-token "
                          "asymmetric sweep), Wilson 95% bands.",
                      .svg = render_svg(chart)};
}

std::optional<ReportFigure> perplexity_vs_flip(const RunSummary& summary) {
  // model -> bits -> perplexity ratio
  std::map<std::string, std::map<int, double>> ppl;
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "perplexity") continue;
    for (const KvSummaryRow& row : group.rows) {
      const auto bits = detail::sweep_bits(row.kv_label);
      if (bits && row.ppl_ratio) ppl[table_model_name(group.model, group.steered)].emplace(*bits, *row.ppl_ratio);
    }
  }
  LineChart chart;
  chart.name = "perplexity_vs_flip";
  chart.title = "Perplexity hides it: perplexity ratio vs conditional flip";
  chart.x_label = "perplexity ratio to full precision";
  chart.y_label = "conditional flip";
  chart.lines = false;  // a scatter: one point per bit width
  chart.y_percent = true;
  chart.y_min = 0.0;
  chart.y_max = 1.0;
  chart.reference_lines = regime_lines();
  std::vector<std::string> left_out;
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "refusal") continue;
    const auto model = ppl.find(table_model_name(group.model, group.steered));
    const auto sweep = detail::refusal_sweep(group);
    if (model == ppl.end() || sweep.empty()) continue;
    if (!group.flip_undefined.empty()) {
      left_out.push_back(series_name(group) + " (" + group.flip_undefined + ")");
      continue;
    }
    ChartSeries series{.name = series_name(group), .points = {}};
    for (const auto& [bits, row] : sweep) {
      const auto ratio = model->second.find(bits);
      if (ratio != model->second.end()) series.points.push_back(rate_point(ratio->second, *row->flip));
    }
    if (!series.points.empty()) chart.series.push_back(std::move(series));
  }
  if (chart.series.empty() && left_out.empty()) return std::nullopt;
  if (chart.series.empty()) return not_drawn(chart.name, "no point has a defined flip." + left_out_sentence(left_out));
  return ReportFigure{.name = chart.name,
                      .caption =
                          "One point per bit width of the per-token asymmetric sweep: the perplexity ratio to "
                          "full precision (same model, WikiText windows) against the conditional flip on a "
                          "refusal benchmark; a ratio near 1 with a high flip is damage perplexity does not "
                          "show." +
                          left_out_sentence(left_out),
                      .svg = render_svg(chart)};
}

std::optional<ReportFigure> layer_sensitivity(const DiagnosisReport& diagnosis) {
  Heatmap chart{.name = "layer_sensitivity",
                .title = "Flip with one layer quantized",
                .x_label = "layer",
                .y_label = "model",
                .rows = {},
                .columns = {},
                .values = {},
                .min = 0,
                .max = 1,
                .percent = true};
  std::int64_t layers = 0;
  std::set<std::int64_t> bits;
  for (const ModelDiagnosisReport& m : diagnosis.models) {
    if (m.profile.empty()) continue;
    layers = std::max(layers, m.model_layers);
    for (const eval::LayerFlip& layer : m.profile) layers = std::max(layers, layer.layer + 1);
    bits.insert(m.bits);
  }
  if (layers == 0) return std::nullopt;
  for (std::int64_t l = 0; l < layers; ++l) chart.columns.push_back("L" + std::to_string(l));
  for (const ModelDiagnosisReport& m : diagnosis.models) {
    if (m.profile.empty()) continue;
    chart.rows.push_back(m.model);
    std::vector<double> values(static_cast<std::size_t>(layers), kNotRun);
    for (const eval::LayerFlip& layer : m.profile) {
      if (layer.layer >= 0) values[static_cast<std::size_t>(layer.layer)] = layer.flip.rate;
    }
    chart.values.push_back(std::move(values));
  }
  return ReportFigure{
      .name = chart.name,
      .caption = fmt::format("Conditional flip on the calibration prompts with only that layer's KV cache quantized "
                             "({}-bit per-tensor symmetric); hatched: not run or undefined.",
                             bits.size() == 1 ? std::to_string(*bits.begin()) : "each model's diagnose.bits"),
      .svg = render_svg(chart)};
}

std::optional<ReportFigure> channel_ablation(const DiagnosisReport& diagnosis) {
  BarChart chart{.name = "channel_ablation",
                 .title = "Channel ablation at the critical layer",
                 .x_label = "channels quantized",
                 .y_label = "conditional flip",
                 .series_names = {},
                 .groups = {},
                 .y_percent = true,
                 .y_min = 0.0,
                 .y_max = 1.0};
  std::vector<std::string> subsets;
  for (const ModelDiagnosisReport& m : diagnosis.models) {
    if (m.channel_ablation.empty()) continue;
    chart.series_names.push_back(m.model);
    for (const ChannelAblationRow& row : m.channel_ablation) {
      if (std::find(subsets.begin(), subsets.end(), row.subset) == subsets.end()) subsets.push_back(row.subset);
    }
  }
  if (chart.series_names.empty()) return std::nullopt;
  for (const std::string& subset : subsets) {
    BarGroup group{.category = subset, .values = {}};
    for (const ModelDiagnosisReport& m : diagnosis.models) {
      if (m.channel_ablation.empty()) continue;
      const auto row = std::find_if(m.channel_ablation.begin(), m.channel_ablation.end(),
                                    [&](const ChannelAblationRow& r) { return r.subset == subset; });
      group.values.push_back(row == m.channel_ablation.end() ? ChartPoint{.x = 0, .y = kNotRun, .low = {}, .high = {}}
                                                             : rate_point(0, row->flip));
    }
    chart.groups.push_back(std::move(group));
  }
  return ReportFigure{.name = chart.name,
                      .caption =
                          "Conditional flip with only a subset of the critical layer's key channels quantized "
                          "(outliers: max |K| >= the 95th percentile; random matched: as many random "
                          "channels), Wilson 95% whiskers.",
                      .svg = render_svg(chart)};
}

std::optional<ReportFigure> protection_recovery(const DiagnosisReport& diagnosis) {
  LineChart chart;
  chart.name = "protection_recovery";
  chart.title = "Recovery vs KV memory added";
  chart.x_label = "KV bytes added (fraction of the unprotected cache)";
  chart.y_label = "recovery (1 - flip / unprotected flip)";
  for (const ModelDiagnosisReport& m : diagnosis.models) {
    std::map<std::tuple<int, std::string, std::string>, ChartSeries> by_setting;
    for (const ProtectionRow& p : m.protection) {
      if (p.k == 0) continue;
      ChartSeries& series = by_setting[{p.bits, p.protect, p.ranked_by}];
      series.name = fmt::format("{} int{} + {} top-k{}", m.model, p.bits, p.protect,
                                p.ranked_by == "critical" ? "" : " (by " + p.ranked_by + ", naive)");
      series.points.push_back({.x = p.byte_overhead, .y = p.recovery, .low = {}, .high = {}});
    }
    for (auto& entry : by_setting) chart.series.push_back(std::move(entry.second));
  }
  if (chart.series.empty()) return std::nullopt;
  return ReportFigure{.name = chart.name,
                      .caption =
                          "The top-k critical layers kept at FP16 or 8-bit (k = 1, 2, ...), the rest per-token "
                          "asymmetric: recovery of the flip against the KV bytes the protection adds.",
                      .svg = render_svg(chart)};
}

}  // namespace

std::vector<ReportFigure> paper_figures(const RunSummary& summary, const DiagnosisReport& diagnosis) {
  std::vector<ReportFigure> out;
  for (auto figure : {phase_transition_flip(summary), phase_transition_refusal(summary), perplexity_vs_flip(summary),
                      layer_sensitivity(diagnosis), channel_ablation(diagnosis), protection_recovery(diagnosis)}) {
    if (figure) out.push_back(std::move(*figure));
  }
  return out;
}

}  // namespace kvsafe::report
