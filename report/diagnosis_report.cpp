#include "report/diagnosis_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "common/error.h"
#include "db/readonly_query.h"
#include "report/verdict_sql.h"

namespace kvsafe::report {
namespace {

std::string quoted(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

struct CellAnswers {
  std::vector<eval::Outcome> outcomes{};
  double mse_sum = 0;
  std::int64_t mse_n = 0;
};

using Key = std::tuple<std::int64_t, std::string>;  // experiment, model

class Builder {
 public:
  Builder(ModelDiagnosisReport& r, const std::map<std::string, CellAnswers>& answers,
          const DiagnosisReportOptions& options)
      : r_(r), answers_(answers), options_(options) {}

  void build() {
    for (DiagnosisArm& arm : r_.arms) fill(arm);
    read_baselines();
    for (DiagnosisArm& arm : r_.arms) {
      const DiagnosisArm* base = arm.task == "mitigate" ? mitigate_baseline(arm) : baseline_of(arm);
      if (arm.task == "baseline" || arm.arm == "key_magnitudes" || base == nullptr || !base->done() || !arm.done() ||
          base->outcomes.size() != arm.outcomes.size()) {
        continue;
      }
      arm.flip = eval::conditional_flip_rate(eval::count_pairs(base->outcomes, arm.outcomes));
    }
    layer_profile();
    pcr();
    decide();
    cumulative();
    channels();
    validation();
    protection();
    mitigation();
    mitigate();
    pending_note();
  }

 private:
  static nlohmann::json detail(const DiagnosisArm& arm) { return nlohmann::json::parse(arm.detail_json); }

  void fill(DiagnosisArm& arm) {
    arm.prompts = detail(arm).value("prompts", "calibration");
    arm.outcomes.assign(static_cast<std::size_t>(std::max<std::int64_t>(arm.n_prompts, 0)), eval::Outcome::kUnjudged);
    if (const auto found = answers_.find(arm.cell_id); found != answers_.end()) {
      const auto& stored = found->second.outcomes;
      for (std::size_t i = 0; i < std::min(stored.size(), arm.outcomes.size()); ++i) arm.outcomes[i] = stored[i];
      arm.stored = static_cast<std::int64_t>(
          std::count_if(stored.begin(), stored.end(), [](eval::Outcome o) { return o != eval::Outcome::kUnjudged; }));
    }
    arm.refusal = eval::refusal_rate(arm.outcomes);
  }

  const DiagnosisArm* find(std::string_view task, std::string_view arm) const {
    for (const DiagnosisArm& a : r_.arms) {
      if (a.task == task && a.arm == arm) return &a;
    }
    return nullptr;
  }

  const DiagnosisArm* baseline_of(const DiagnosisArm& arm) const { return find("baseline", arm.prompts); }
  // A mitigate arm's baseline: the full-precision cell of the same grid benchmark.
  const DiagnosisArm* mitigate_baseline(const DiagnosisArm& arm) const {
    if (arm.arm.rfind("baseline ", 0) == 0) return nullptr;
    return find("mitigate", "baseline " + detail(arm).value("benchmark", ""));
  }

  void read_baselines() {
    for (const char* set : {"calibration", "test"}) {
      const DiagnosisArm* base = find("baseline", set);
      if (base == nullptr) continue;
      const nlohmann::json d = detail(*base);
      r_.model_layers = d.value("model_layers", r_.model_layers);
      r_.bits = d.value("bits", r_.bits);
      r_.critical_flip_threshold = d.value("critical_flip_threshold", r_.critical_flip_threshold);
      r_.pcr_low = d.value("pcr_low", r_.pcr_low);
      r_.pcr_high = d.value("pcr_high", r_.pcr_high);
      outlier_fraction_ = d.value("outlier_fraction", outlier_fraction_);
      if (!options_.critical_from_profile && d.contains("explicit_critical_layers") &&
          !d["explicit_critical_layers"].empty()) {
        r_.explicit_critical = true;
        explicit_layers_ = d["explicit_critical_layers"].get<std::vector<std::int64_t>>();
      }
      if (!base->done()) continue;
      (std::string_view(set) == "calibration" ? r_.calibration_refusal : r_.test_refusal) = base->refusal;
      const std::int64_t refused = base->refusal.rate.successes;
      if (refused == 0) {
        r_.notes.push_back(
            fmt::format("undefined: the {} baseline refused 0 of {} prompts, so no flip rate on them is "
                        "defined (a model that refuses is needed; issue 25)",
                        set, base->refusal.rate.trials));
      } else if (refused < options_.min_baseline_refusals) {
        r_.notes.push_back(
            fmt::format("the {} baseline refused only {} of {} prompts: its flip rates rest on {} "
                        "prompt(s) and their intervals are wide",
                        set, refused, base->refusal.rate.trials, refused));
      }
    }
  }

  void layer_profile() {
    const DiagnosisArm* base = find("baseline", "calibration");
    bool complete = base != nullptr && base->done();
    std::vector<std::string> from;
    if (base != nullptr) from.push_back(base->cell_id);
    for (const DiagnosisArm& arm : r_.arms) {
      if (arm.task != "layer_ablation") continue;
      ++r_.profile_layers;
      from.push_back(arm.cell_id);
      if (!arm.flip) {
        complete = false;
        continue;
      }
      const auto& answers = answers_.find(arm.cell_id);
      double mse = NAN;
      if (answers != answers_.end() && answers->second.mse_n > 0) {
        mse = answers->second.mse_sum / static_cast<double>(answers->second.mse_n);
      }
      r_.profile.push_back({.layer = detail(arm).value("layer", std::int64_t{0}), .flip = *arm.flip, .kv_mse = mse});
    }
    std::sort(r_.profile.begin(), r_.profile.end(), [](const auto& a, const auto& b) { return a.layer < b.layer; });
    eval::CriticalLayerOptions options;
    options.critical_flip_threshold = r_.critical_flip_threshold;
    options.model_layers = r_.model_layers;
    if (r_.explicit_critical) {
      eval::CriticalLayers named;
      named.model_layers = r_.model_layers;
      named.threshold = r_.critical_flip_threshold;
      named.profiled = static_cast<std::int64_t>(r_.profile.size());
      for (const std::int64_t layer : explicit_layers_) {
        eval::LayerFlip flip{.layer = layer, .flip = eval::wilson_interval(0, 0), .kv_mse = NAN};
        for (const auto& p : r_.profile) {
          if (p.layer == layer) flip = p;
        }
        named.ranked.push_back(flip);
      }
      r_.critical = named;
      return;
    }
    if (r_.profile_layers > 0 && complete) {
      r_.critical = eval::critical_layers(r_.profile, options);
      std::sort(from.begin(), from.end());
      r_.critical_from = from;
    }
  }

  void pcr() {
    const DiagnosisArm* base = find("baseline", "calibration");
    const DiagnosisArm* pt = find("pcr", "per_tensor");
    const DiagnosisArm* pc = find("pcr", "per_channel");
    if (pt != nullptr) r_.pcr_layer = detail(*pt).value("layer", std::int64_t{0});
    if (base == nullptr || pt == nullptr || pc == nullptr || !base->done() || !pt->done() || !pc->done()) return;
    const eval::PairedFlips paired = eval::pair_flips(base->outcomes, pt->outcomes, pc->outcomes);
    r_.pcr = eval::estimate_pcr(paired.flips);
  }

  void decide() {
    if (!r_.critical) return;
    // NOTE: with no refusal at full precision every flip is undefined, and "no layer reaches
    // the threshold" would be a claim the data cannot make.
    if (!r_.explicit_critical && r_.calibration_refusal && r_.calibration_refusal->rate.successes == 0) return;
    eval::ModeOptions options;
    options.pcr_low = r_.pcr_low;
    options.pcr_high = r_.pcr_high;
    std::optional<double> pcr;
    if (r_.pcr) pcr = r_.pcr->pcr;
    try {
      r_.diagnosis = eval::diagnose(*r_.critical, pcr, options);
      r_.diagnosis_from = r_.critical_from;
      if (r_.diagnosis->pcr) {
        for (const char* arm : {"per_tensor", "per_channel"}) {
          if (const DiagnosisArm* a = find("pcr", arm)) r_.diagnosis_from.push_back(a->cell_id);
        }
      }
      std::sort(r_.diagnosis_from.begin(), r_.diagnosis_from.end());
      r_.diagnosis_from.erase(std::unique(r_.diagnosis_from.begin(), r_.diagnosis_from.end()), r_.diagnosis_from.end());
    } catch (const InputError&) {
      r_.notes.push_back("the failure mode waits for PCR (the pcr task's two cells)");
    }
  }

  void cumulative() {
    for (const DiagnosisArm& arm : r_.arms) {
      if (arm.task != "cumulative" || !arm.flip) continue;
      const nlohmann::json d = detail(arm);
      r_.cumulative.push_back(
          {.direction = d.value("direction", ""), .count = d.value("count", std::int64_t{0}), .flip = *arm.flip});
    }
    std::sort(r_.cumulative.begin(), r_.cumulative.end(), [](const auto& a, const auto& b) {
      return std::tie(a.direction, a.count) > std::tie(b.direction, b.count);
    });
    std::stable_sort(r_.cumulative.begin(), r_.cumulative.end(), [](const auto& a, const auto& b) {
      return a.direction != b.direction ? a.direction > b.direction : a.count < b.count;
    });
  }

  void channels() {
    const DiagnosisArm* keys = find("channel_ablation", "key_magnitudes");
    if (keys == nullptr) keys = find("protection_sweep", "key_magnitudes");  // the same pass, its other user
    if (keys != nullptr) r_.key_magnitudes_cell = keys->cell_id;
    std::optional<double> outlier_flip, random_flip;
    for (const DiagnosisArm& arm : r_.arms) {
      if (arm.task != "channel_ablation" || arm.arm == "key_magnitudes") continue;
      const nlohmann::json d = detail(arm);
      r_.channel_layer = d.value("layer", std::int64_t{0});
      if (!arm.flip) continue;
      r_.channel_ablation.push_back(
          {.subset = arm.arm, .channels = d.value("channels", std::int64_t{0}), .flip = *arm.flip});
      if (arm.arm == "outliers") outlier_flip = arm.flip->rate;
      if (arm.arm == "random_matched") random_flip = arm.flip->rate;
    }
    // The paper's table order: references, the causal pair, the complements, random sizes ascending.
    const auto rank = [](const std::string& subset) {
      static const std::vector<std::string> order = {"per_tensor",     "per_channel",  "outliers",
                                                     "random_matched", "non_outliers", "low_magnitude"};
      const auto at = std::find(order.begin(), order.end(), subset);
      if (at != order.end()) return std::make_pair(static_cast<int>(at - order.begin()), 0);
      return std::make_pair(static_cast<int>(order.size()), std::atoi(subset.c_str() + subset.find('_') + 1));
    };
    std::sort(r_.channel_ablation.begin(), r_.channel_ablation.end(),
              [&](const auto& a, const auto& b) { return rank(a.subset) < rank(b.subset); });
    if (outlier_flip && random_flip && !std::isnan(*outlier_flip) && !std::isnan(*random_flip)) {
      r_.causal_ratio = eval::causal_ratio(*outlier_flip, *random_flip);
    }
    if (r_.channel_layer) {
      const auto found = r_.channel_max_abs.find(static_cast<int>(*r_.channel_layer));
      if (found != r_.channel_max_abs.end()) {
        eval::OutlierOptions options;
        options.outlier_fraction = outlier_fraction_;
        r_.outliers = eval::select_outlier_channels(found->second, options);
      }
    }
  }

  void validation() {
    const DiagnosisArm* pt = find("pcr_validation", "per_tensor");
    const DiagnosisArm* pc = find("pcr_validation", "per_channel");
    const DiagnosisArm* g64 = find("pcr_validation", "group64");
    if (pt != nullptr && pt->flip) r_.test_per_tensor = pt->flip;
    if (pc != nullptr && pc->flip) r_.test_per_channel = pc->flip;
    if (g64 != nullptr && g64->flip) r_.test_group64 = g64->flip;
    if (!r_.test_per_tensor || std::isnan(r_.test_per_tensor->rate)) return;
    if (r_.test_per_channel) {
      r_.test_pcr = eval::per_channel_reduction(r_.test_per_channel->rate, r_.test_per_tensor->rate);
      if (r_.pcr && trials(r_.pcr->per_tensor) > 0 && !std::isnan(r_.pcr->pcr) && !std::isnan(*r_.test_pcr)) {
        r_.prediction = eval::check_pcr_prediction(r_.pcr->pcr, *r_.test_pcr, r_.pcr_low);
      }
    }
    if (r_.test_group64)
      r_.group64_reduction = eval::group64_reduction(r_.test_group64->rate, r_.test_per_tensor->rate);
  }

  static std::int64_t trials(const eval::Proportion& p) { return p.trials; }

  void protection() {
    std::map<int, double> unprotected;
    std::map<int, double> unprotected_bits;
    for (const DiagnosisArm& arm : r_.arms) {
      if (arm.task != "protection_sweep") continue;
      const nlohmann::json d = detail(arm);
      if (d.value("protect", "") != "none") continue;
      unprotected_bits[d.value("bits", 0)] = arm.effective_bits;
      if (arm.flip) unprotected[d.value("bits", 0)] = arm.flip->rate;
    }
    for (const DiagnosisArm& arm : r_.arms) {
      if (arm.task != "protection_sweep" || !arm.flip) continue;
      const nlohmann::json d = detail(arm);
      ProtectionRow row;
      row.bits = d.value("bits", 0);
      row.protect = d.value("protect", "");
      row.ranked_by = d.value("ranked_by", std::string("critical"));
      row.k = d.value("k", std::int64_t{0});
      if (d.contains("layers")) row.layers = d["layers"].get<std::vector<std::int64_t>>();
      row.flip = *arm.flip;
      const auto base = unprotected.find(row.bits);
      row.recovery =
          base == unprotected.end() || row.k == 0 ? NAN : eval::protection_recovery(row.flip.rate, base->second);
      row.layer_overhead =
          r_.model_layers > 0 ? static_cast<double>(row.k) / static_cast<double>(r_.model_layers) : NAN;
      const auto bits = unprotected_bits.find(row.bits);
      row.byte_overhead = bits == unprotected_bits.end() ? NAN : arm.effective_bits / bits->second - 1.0;
      r_.protection.push_back(std::move(row));
    }
    std::sort(r_.protection.begin(), r_.protection.end(), [](const auto& a, const auto& b) {
      return std::tie(b.bits, a.k, a.ranked_by, a.protect) < std::tie(a.bits, b.k, b.ranked_by, b.protect);
    });
  }

  void mitigation() {
    const DiagnosisArm* base = find("baseline", "test");
    if (base == nullptr || !base->done()) return;
    std::map<int, double> uniform;
    for (const DiagnosisArm& arm : r_.arms) {
      if (arm.task != "mitigation" || !arm.flip) continue;
      const nlohmann::json d = detail(arm);
      if (d.value("strategy", "") == "uniform") uniform[d.value("bits", 0)] = arm.refusal.rate.rate;
    }
    for (const DiagnosisArm& arm : r_.arms) {
      if (arm.task != "mitigation" || !arm.flip) continue;
      const nlohmann::json d = detail(arm);
      MitigationRow row;
      row.bits = d.value("bits", 0);
      row.strategy = d.value("strategy", "");
      row.refusal = arm.refusal.rate;
      row.flip = *arm.flip;
      const auto u = uniform.find(row.bits);
      row.recovery =
          u == uniform.end() ? NAN : eval::mitigation_recovery(base->refusal.rate.rate, u->second, row.refusal.rate);
      r_.mitigation.push_back(std::move(row));
    }
    std::stable_sort(r_.mitigation.begin(), r_.mitigation.end(),
                     [](const auto& a, const auto& b) { return a.bits > b.bits; });
  }

  void mitigate() {
    std::map<std::pair<std::string, int>, MitigateRow> rows;
    for (const DiagnosisArm& arm : r_.arms) {
      if (arm.task != "mitigate" || arm.arm.rfind("baseline ", 0) == 0) continue;
      const nlohmann::json d = detail(arm);
      MitigateRow& row = rows[{d.value("benchmark", ""), d.value("bits", 0)}];
      row.benchmark = d.value("benchmark", "");
      row.bits = d.value("bits", 0);
      const bool fix = d.contains("prescription");
      if (fix) row.prescription = d.value("prescription", "");
      if (const DiagnosisArm* base = mitigate_baseline(arm); base != nullptr && base->done()) {
        row.refusal_fp16 = base->refusal.rate;
      }
      if (!arm.done()) continue;
      (fix ? row.refusal_fix : row.refusal_uniform) = arm.refusal.rate;
      (fix ? row.flip_fix : row.flip_uniform) = arm.flip;
    }
    for (auto& [key, row] : rows) {
      row.recovery =
          row.refusal_fp16 && row.refusal_uniform && row.refusal_fix
              ? eval::mitigation_recovery(row.refusal_fp16->rate, row.refusal_uniform->rate, row.refusal_fix->rate)
              : NAN;
      r_.mitigate.push_back(row);
    }
    std::stable_sort(r_.mitigate.begin(), r_.mitigate.end(),
                     [](const auto& a, const auto& b) { return a.bits > b.bits; });
  }

  void pending_note() {
    std::int64_t pending = 0;
    std::set<std::string> seen;
    for (const DiagnosisArm& arm : r_.arms) {
      if (!arm.done() && seen.insert(arm.cell_id).second) ++pending;
    }
    if (pending > 0) r_.notes.push_back(fmt::format("{} cell(s) not done yet: their numbers are missing", pending));
  }

  ModelDiagnosisReport& r_;
  const std::map<std::string, CellAnswers>& answers_;
  const DiagnosisReportOptions& options_;
  std::vector<std::int64_t> explicit_layers_{};
  double outlier_fraction_ = 0.05;
};

std::string percent(double rate) {
  if (std::isnan(rate)) return "undefined";
  return fmt::format("{:.1f}%", 100.0 * rate);
}

std::string proportion(const eval::Proportion& p) {
  if (p.trials == 0) return "undefined (0 refused)";
  return fmt::format("{} [{:.1f}, {:.1f}] ({}/{})", percent(p.rate), 100.0 * p.lower, 100.0 * p.upper, p.successes,
                     p.trials);
}

std::string number(double value) {
  if (std::isnan(value)) return "undefined";
  return fmt::format("{:.2f}", value);
}

std::string bar(double rate) {
  constexpr int kWidth = 20;
  if (std::isnan(rate)) return std::string(kWidth, '?');
  const int filled = static_cast<int>(std::lround(rate * kWidth));
  return std::string(static_cast<std::size_t>(filled), '#') +
         std::string(static_cast<std::size_t>(kWidth - filled), '.');
}

void print_model(std::ostream& out, const ModelDiagnosisReport& r) {
  out << fmt::format("== {} (experiment {}): {} layers, int{} per-tensor symmetric, critical flip >= {}, PCR {} / {}\n",
                     r.model, r.experiment, r.model_layers, r.bits, number(r.critical_flip_threshold),
                     number(r.pcr_low), number(r.pcr_high));
  if (r.calibration_refusal) {
    out << fmt::format("baseline (full precision), calibration prompts: refused {}\n",
                       proportion(r.calibration_refusal->rate));
  }
  if (r.test_refusal) {
    out << fmt::format("baseline (full precision), test prompts: refused {}\n", proportion(r.test_refusal->rate));
  }
  if (r.profile_layers > 0) {
    out << fmt::format("layer profile ({} of {} layers stored): conditional flip with that layer alone quantized\n",
                       r.profile.size(), r.profile_layers);
    for (const eval::LayerFlip& layer : r.profile) {
      const bool critical = r.critical && std::any_of(r.critical->ranked.begin(), r.critical->ranked.end(),
                                                      [&](const eval::LayerFlip& c) { return c.layer == layer.layer; });
      out << fmt::format("  L{:<3} {} {}{}{}\n", layer.layer, bar(layer.flip.rate), proportion(layer.flip),
                         std::isnan(layer.kv_mse) ? "" : fmt::format("  kv mse {:.3g}", layer.kv_mse),
                         critical ? "  critical" : "");
    }
  }
  const bool undefined = !r.explicit_critical && r.calibration_refusal && r.calibration_refusal->rate.successes == 0;
  if (r.critical && undefined) {
    out << "critical layers: undefined (the calibration baseline refused nothing)\n";
  } else if (r.critical) {
    std::string layers;
    for (const auto& c : r.critical->ranked) layers += (layers.empty() ? "" : ", ") + fmt::format("L{}", c.layer);
    out << fmt::format("critical layers{}: {}{}\n", r.explicit_critical ? " (named by the grid)" : "",
                       layers.empty() ? "none" : layers, r.critical->hyper_vulnerable ? " (hyper-vulnerable)" : "");
  }
  if (r.pcr) {
    out << fmt::format("PCR at L{}: {} [{}, {}] (paired bootstrap, {} resamples); flip per tensor {}, per channel {}\n",
                       r.pcr_layer.value_or(-1), number(r.pcr->pcr), number(r.pcr->lower), number(r.pcr->upper),
                       r.pcr->resamples, proportion(r.pcr->per_tensor), proportion(r.pcr->per_channel));
  }
  if (r.diagnosis) {
    std::string layers;
    for (const auto l : r.diagnosis->layers) layers += (layers.empty() ? "" : ", ") + fmt::format("L{}", l);
    out << fmt::format("mode: {}; fix: {}{}; because {}\n", eval::to_string(r.diagnosis->mode),
                       eval::to_string(r.diagnosis->prescription), layers.empty() ? "" : " (" + layers + ")",
                       r.diagnosis->rule);
  }
  if (!r.cumulative.empty()) {
    out << "cumulative (layers quantized together):\n";
    for (const auto& p : r.cumulative) {
      out << fmt::format("  {:<5} {:>3} {} {}\n", p.direction, p.count, bar(p.flip.rate), proportion(p.flip));
    }
  }
  if (r.outliers) {
    std::string ids;
    for (const auto c : r.outliers->outliers) ids += (ids.empty() ? "" : ",") + std::to_string(c);
    out << fmt::format("outlier channels at L{}: {} channel(s) with max |K| >= {:.4g} (the {:g}th percentile): [{}]\n",
                       r.channel_layer.value_or(-1), r.outliers->outliers.size(), r.outliers->threshold,
                       r.outliers->percentile, ids);
  }
  if (!r.channel_ablation.empty()) {
    out << fmt::format("channel ablation at L{} (only these channels quantized):\n", r.channel_layer.value_or(-1));
    for (const auto& c : r.channel_ablation) {
      out << fmt::format("  {:<15} {:>5} {} {}\n", c.subset,
                         c.channels == 0 ? std::string("all") : std::to_string(c.channels), bar(c.flip.rate),
                         proportion(c.flip));
    }
  }
  if (r.causal_ratio) out << "causal ratio (outliers / random matched): " << number(*r.causal_ratio) << "\n";
  if (r.test_per_tensor || r.test_per_channel || r.test_group64) {
    out << "validation on the test prompts (every layer quantized):\n";
    if (r.test_per_tensor) out << "  per tensor   " << proportion(*r.test_per_tensor) << "\n";
    if (r.test_per_channel) out << "  per channel  " << proportion(*r.test_per_channel) << "\n";
    if (r.test_group64) out << "  group-64     " << proportion(*r.test_group64) << "\n";
    std::string line;
    if (r.test_pcr) line += "test PCR " + number(*r.test_pcr);
    if (r.group64_reduction)
      line += (line.empty() ? "" : ", ") + ("group-64 reduction " + number(*r.group64_reduction));
    if (r.prediction) line += std::string(", PCR prediction ") + (r.prediction->correct ? "correct" : "wrong");
    if (!line.empty()) out << "  " << line << "\n";
  }
  if (!r.protection.empty()) {
    out << "protection sweep (rest per-token asymmetric; recovery = 1 - flip/flip(unprotected)):\n";
    for (const auto& p : r.protection) {
      out << fmt::format("  int{} {:<5} k={} {}  recovery {}  layers {}  KV bytes +{}{}\n", p.bits, p.protect, p.k,
                         proportion(p.flip), number(p.recovery), percent(p.layer_overhead), percent(p.byte_overhead),
                         p.ranked_by == "critical" ? "" : "  (layers by " + p.ranked_by + ", a naive baseline)");
    }
  }
  if (!r.mitigation.empty()) {
    out << "mitigation (recovery = (refusal - refusal_uniform) / (refusal_fp16 - refusal_uniform)):\n";
    for (const auto& m : r.mitigation) {
      out << fmt::format("  int{} {:<28} refused {}  flip {}  recovery {}\n", m.bits, m.strategy,
                         percent(m.refusal.rate), proportion(m.flip), number(m.recovery));
    }
  }
  if (!r.mitigate.empty()) {
    out << "mitigate: the prescribed fix on the grid's benchmarks (recovery as above):\n";
    const auto rate = [](const std::optional<eval::Proportion>& p) { return p ? percent(p->rate) : std::string("-"); };
    for (const auto& m : r.mitigate) {
      out << fmt::format(
          "  int{} {:<20} {:<34} refused: FP16 {}, uniform {}, fix {}; flip of the fix {}; recovery {}\n", m.bits,
          m.benchmark, m.prescription, rate(m.refusal_fp16), rate(m.refusal_uniform), rate(m.refusal_fix),
          m.flip_fix ? proportion(*m.flip_fix) : std::string("-"), number(m.recovery));
    }
  }
  for (const auto& note : r.notes) out << "note: " << note << "\n";
}

bool has_table(const std::filesystem::path& db, const std::string& table) {
  const auto found =
      db::run_readonly_query(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = " + quoted(table));
  return !found.rows.empty() && db::query_int64(found.rows[0][0]) != 0;
}

// max |K| per channel over the prompts of each done key_magnitudes cell, per layer.
void read_key_magnitudes(const std::filesystem::path& db, const std::string& where,
                         std::map<Key, ModelDiagnosisReport>& models) {
  if (!has_table(db, "key_magnitudes")) return;  // a database from before schema version 6
  const auto rows = db::run_readonly_query(
      db,
      "SELECT r.experiment_id, r.model, m.layer, m.max_abs_json FROM key_magnitudes m JOIN diagnosis_roles r ON "
      "r.cell_id = m.cell_id AND r.arm = 'key_magnitudes' JOIN cells c ON c.id = m.cell_id AND c.status = 'done' " +
          where + " ORDER BY m.prompt_index");
  for (const auto& row : rows.rows) {
    const auto found = models.find(Key{db::query_int64(row[0]), db::query_text(row[1])});
    if (found == models.end()) continue;
    std::vector<float>& max_abs = found->second.channel_max_abs[static_cast<int>(db::query_int64(row[2]))];
    const auto values = nlohmann::json::parse(db::query_text(row[3])).get<std::vector<float>>();
    if (max_abs.empty()) max_abs.assign(values.size(), 0.0F);
    KVSAFE_CHECK(values.size() == max_abs.size(), "key_magnitudes: layer ", db::query_text(row[2]), " has ",
                 values.size(), " channels in one row and ", max_abs.size(), " in another");
    for (std::size_t i = 0; i < values.size(); ++i) max_abs[i] = std::max(max_abs[i], values[i]);
  }
}

}  // namespace

DiagnosisReport read_diagnosis_report(const std::filesystem::path& db, const DiagnosisReportOptions& options) {
  DiagnosisReport report;
  if (!has_table(db, "diagnosis_roles")) return report;

  std::string where = "WHERE 1";
  if (options.experiment_id) where += fmt::format(" AND r.experiment_id = {}", *options.experiment_id);
  if (options.model) where += " AND r.model = " + quoted(*options.model);
  const auto roles = db::run_readonly_query(
      db,
      "SELECT r.experiment_id, e.name, r.model, r.task, r.arm, r.cell_id, r.detail_json, c.status, k.label, "
      "c.n_prompts, k.effective_bits FROM diagnosis_roles r JOIN experiments e ON e.id = r.experiment_id JOIN cells c "
      "ON c.id = "
      "r.cell_id JOIN kv_specs k ON k.hash = c.kv_hash " +
          where + " ORDER BY r.experiment_id, r.model, r.task, r.arm");
  std::map<Key, ModelDiagnosisReport> models;
  std::set<std::string> cell_ids;
  for (const auto& row : roles.rows) {
    const Key key{db::query_int64(row[0]), db::query_text(row[2])};
    ModelDiagnosisReport& m = models[key];
    m.experiment_id = db::query_int64(row[0]);
    m.experiment = db::query_text(row[1]);
    m.model = db::query_text(row[2]);
    m.arms.push_back({.task = db::query_text(row[3]),
                      .arm = db::query_text(row[4]),
                      .cell_id = db::query_text(row[5]),
                      .kv_label = db::query_text(row[8]),
                      .effective_bits = db::query_double(row[10]).value_or(16),
                      .status = db::query_text(row[7]),
                      .detail_json = db::query_text(row[6]),
                      .n_prompts = db::query_int64(row[9])});
    cell_ids.insert(db::query_text(row[5]));
  }
  if (models.empty()) return report;

  const auto generations =
      db::run_readonly_query(db, "SELECT g.cell_id, g.prompt_index, " + verdict_sql(db, options.judge) +
                                     ", g.kv_mse_key, g.kv_mse_value FROM generations g WHERE g.cell_id IN "
                                     "(SELECT r.cell_id FROM diagnosis_roles r " +
                                     where + ")");
  std::map<std::string, CellAnswers> answers;
  for (const auto& row : generations.rows) {
    CellAnswers& a = answers[db::query_text(row[0])];
    const auto index = static_cast<std::size_t>(db::query_int64(row[1]));
    if (a.outcomes.size() <= index) a.outcomes.resize(index + 1, eval::Outcome::kUnjudged);
    if (!std::holds_alternative<std::monostate>(row[2])) {
      a.outcomes[index] = db::query_int64(row[2]) != 0 ? eval::Outcome::kRefused : eval::Outcome::kComplied;
    }
    const auto key_mse = db::query_double(row[3]);
    const auto value_mse = db::query_double(row[4]);
    if (key_mse && value_mse) {
      a.mse_sum += (*key_mse + *value_mse) / 2.0;
      ++a.mse_n;
    }
  }
  read_key_magnitudes(db, where, models);
  for (auto& [key, model] : models) {
    try {
      Builder(model, answers, options).build();
    } catch (const std::exception& error) {
      // NOTE: one model's inconsistent numbers (a hand-edited database) must not hide the others.
      model.notes.push_back(std::string("could not compute this diagnosis: ") + error.what());
    }
    report.models.push_back(std::move(model));
  }
  return report;
}

void print_diagnosis_report(std::ostream& out, const DiagnosisReport& report) {
  if (report.models.empty()) {
    out << "no diagnosis in this database: run `kvsafe diagnose GRID` (or list diagnose.tasks in the grid)\n";
    return;
  }
  bool first = true;
  for (const auto& model : report.models) {
    if (!first) out << "\n";
    first = false;
    print_model(out, model);
  }
}

}  // namespace kvsafe::report
