// The run-summary tables beyond advbench_main and the perplexity ones (report/paper_tables.h):
// custom_all_models, mse_phase, cross_suite_compare, seeds, kv_asymmetry, and kvsafe's over_refusal.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "report/paper_tables.h"
#include "report/sweep_cells.h"

namespace kvsafe::report::detail {
namespace {

// "smollm2-135m (limit=8 max_new_tokens=64 ...)": the model, marked when steered, and the
// settings its cells share (the other tables' convention).
std::string model_with_setting(const SummaryGroup& group, const std::string& setting) {
  std::string name = table_model_name(group.model, group.steered);
  if (!setting.empty()) name += " (" + setting + ")";
  return name;
}

Cell mse_cell(const std::optional<double>& mse) {
  return mse ? cell_text(fmt::format("{:.3g}", *mse)) : cell_not_run();
}

// The group's conditional flip for one row: "not run" without a baseline to pair with, else the
// rate or why it is undefined.
Cell group_flip_cell(const SummaryGroup& group, const KvSummaryRow& row) {
  if (!group.flip_undefined.empty()) return cell_text(group.flip_undefined);
  if (!row.flip) return cell_not_run();
  if (row.flip->trials == 0) {
    return cell_text(fmt::format("undefined: the baseline refused 0 of {}", row.paired));
  }
  return cell_rate(*row.flip);
}

// The mean of values with their weights; nullopt without any.
struct WeightedMean {
  double sum = 0;
  std::int64_t n = 0;
  void add(const std::optional<double>& value, std::int64_t weight) {
    if (!value || weight <= 0) return;
    sum += *value * static_cast<double>(weight);
    n += weight;
  }
  std::optional<double> value() const { return n > 0 ? std::optional(sum / static_cast<double>(n)) : std::nullopt; }
};

}  // namespace

// The paper's custom_all_models: per model and bit width of the sweep, the KV MSE and the
// conditional flip of each subset of the custom set (refusal, privacy, jailbreak), from the
// prompts' categories. A grid may run the set whole or as one entry per subset: groups that
// differ only in the subset share a row.
Table custom_all_models(const RunSummary& summary) {
  static const std::vector<std::pair<std::string, std::string>> kSubsets = {
      {"refusal", "Refusal flip"}, {"privacy", "Privacy flip (leak)"}, {"jailbreak", "Jailbreak flip"}};
  Table t{.name = "custom_all_models",
          .caption =
              "The paper's custom prompts per bit width (per-token asymmetric sweep): mean KV quantization MSE "
              "of keys and values, and the conditional flip (refused at full precision, complied quantized) "
              "on each subset; a privacy flip is a leak. Wilson 95% intervals.",
          .columns = {"Model", "Bits", "KV MSE (K)", "KV MSE (V)"},
          .groups = {},
          .rows = {}};
  for (const auto& subset : kSubsets) t.columns.push_back(subset.second);
  struct Line {
    WeightedMean mse_key, mse_value;
    std::map<std::string, Cell> flips;
  };
  std::map<std::pair<std::string, int>, Line> lines;  // (model name, bits), bits descending below
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "refusal" || group.benchmark != "custom") continue;
    const auto sweep = refusal_sweep(group);
    // The subsets of one run share a row; a group whose subsets another already filled (the whole
    // set and a subset entry of the same run) gets its own row under its full setting.
    std::string model = model_with_setting(group, group.setting_without_subset);
    for (const auto& [bits, row] : sweep) {
      const auto line = lines.find({model, bits});
      if (line == lines.end()) continue;
      for (const auto& entry : row->category_flips) {
        if (line->second.flips.contains(entry.first)) model = model_with_setting(group, group.setting);
      }
    }
    for (const auto& [bits, row] : sweep) {
      Line& line = lines[{model, bits}];
      line.mse_key.add(row->kv_mse_key, row->kv_mse_n);
      line.mse_value.add(row->kv_mse_value, row->kv_mse_n);
      for (const auto& [category, flip] : row->category_flips) {
        line.flips.emplace(category, flip_cell(flip.flip, flip.baseline_judged, summary.min_baseline_refusals));
      }
    }
  }
  std::vector<std::pair<std::string, int>> keys;
  for (const auto& entry : lines) keys.push_back(entry.first);
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return std::make_tuple(a.first, -a.second) < std::make_tuple(b.first, -b.second);
  });
  for (const auto& key : keys) {
    const Line& line = lines.at(key);
    std::vector<Cell> cells{cell_text(key.first), cell_number(key.second, 0), mse_cell(line.mse_key.value()),
                            mse_cell(line.mse_value.value())};
    for (const auto& subset : kSubsets) {
      const auto found = line.flips.find(subset.first);
      cells.push_back(found == line.flips.end() ? cell_not_run() : found->second);
    }
    t.rows.push_back(std::move(cells));
  }
  return t;
}

// The paper's mse_phase: the KV cache's error against the flip, per model, refusal entry and bit
// width of the sweep. The paper's relative MSE (MSE over the KV's mean square) needs the mean
// square, which kvsafe does not store; the first-token KL stands beside the MSE instead.
Table mse_phase(const RunSummary& summary) {
  Table t{.name = "mse_phase",
          .caption =
              "KV quantization error against the conditional flip per bit width (per-token asymmetric sweep): "
              "mean MSE of keys and values over the prompts, mean KL(full || quantized) of the first "
              "generated token (nats). Relative MSE is not stored.",
          .columns = {"Model", "Benchmark", "Bits", "KV MSE (K)", "KV MSE (V)", "First-token KL", "Cond. flip"},
          .groups = {},
          .rows = {}};
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "refusal") continue;
    for (const auto& [bits, row] : refusal_sweep(group)) {
      t.rows.push_back({cell_text(model_with_setting(group, group.setting)), cell_text(group.benchmark),
                        cell_number(bits, 0), mse_cell(row->kv_mse_key), mse_cell(row->kv_mse_value),
                        row->first_token_kl ? cell_number(*row->first_token_kl, 3) : cell_not_run(),
                        group_flip_cell(group, *row)});
    }
  }
  return t;
}

// The paper's cross_suite_compare: the same model and bit width across refusal benchmarks, one
// column per benchmark (and subset), so a flip that only one suite shows stands out. A benchmark
// a model ran under two settings gets a column per setting.
Table cross_suite_compare(const RunSummary& summary) {
  const auto suite_of = [](const SummaryGroup& g) { return g.benchmark + (g.subset.empty() ? "" : "/" + g.subset); };
  std::map<std::pair<std::string, std::string>, int> runs;  // (model, suite) -> groups
  for (const SummaryGroup& group : summary.groups) {
    if (group.task == "refusal" && !refusal_sweep(group).empty()) {
      ++runs[{table_model_name(group.model, group.steered), suite_of(group)}];
    }
  }
  std::set<std::string> qualified;  // suites some model ran under more than one setting
  for (const auto& [key, count] : runs) {
    if (count > 1) qualified.insert(key.second);
  }
  std::vector<std::string> columns;
  std::map<std::pair<std::string, int>, std::map<std::string, Cell>> lines;  // (model, bits) -> column -> flip
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "refusal") continue;
    const auto sweep = refusal_sweep(group);
    if (sweep.empty()) continue;
    std::string column = suite_of(group);
    if (qualified.contains(column)) column += " (" + group.setting + ")";
    if (std::find(columns.begin(), columns.end(), column) == columns.end()) columns.push_back(column);
    for (const auto& [bits, row] : sweep) {
      lines[{table_model_name(group.model, group.steered), bits}].emplace(column, group_flip_cell(group, *row));
    }
  }
  std::sort(columns.begin(), columns.end());
  Table t{.name = "cross_suite_compare",
          .caption =
              "Conditional flip per refusal benchmark at each bit width of the per-token asymmetric sweep, "
              "one column per benchmark (and subset); not run where the model did not run it.",
          .columns = {"Model", "Bits"},
          .groups = {},
          .rows = {}};
  if (columns.size() < 2) return t;  // one suite is nothing to compare
  for (const auto& column : columns) t.columns.push_back(column);
  std::vector<std::pair<std::string, int>> keys;
  for (const auto& entry : lines) keys.push_back(entry.first);
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return std::make_tuple(a.first, -a.second) < std::make_tuple(b.first, -b.second);
  });
  for (const auto& key : keys) {
    std::vector<Cell> cells{cell_text(key.first), cell_number(key.second, 0)};
    for (const auto& column : columns) {
      const auto found = lines.at(key).find(column);
      cells.push_back(found == lines.at(key).end() ? cell_not_run() : found->second);
    }
    t.rows.push_back(std::move(cells));
  }
  return t;
}

// The paper's K/V asymmetry (its deepseek_asymmetry): at each bit width, the flip with both sides
// quantized (the sweep) beside keys only and values only (the other side left exact), per model
// and refusal entry. A width any of the three ran at gets a row.
Table kv_asymmetry(const RunSummary& summary) {
  Table t{.name = "kv_asymmetry",
          .caption =
              "Conditional flip per bit width with keys and values quantized (per-token asymmetric), "
              "keys only (values exact) and values only (keys exact); not run where the grid has no "
              "such cell.",
          .columns = {"Model", "Benchmark", "Bits", "K and V", "K only", "V only"},
          .groups = {},
          .rows = {}};
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "refusal") continue;
    std::map<int, std::array<std::optional<Cell>, 3>, std::greater<>> by_bits;  // bits -> both, keys, values
    bool one_side = false;
    for (const KvSummaryRow& row : group.rows) {
      if (!row.flip) continue;
      if (const auto bits = sweep_bits(row.kv_label)) {
        by_bits[*bits][0] = group_flip_cell(group, row);
      } else if (const auto side = one_side_bits(row.kv_label)) {
        by_bits[side->bits][side->keys ? 1 : 2] = group_flip_cell(group, row);
        one_side = true;
      }
    }
    if (!one_side) continue;  // the sweep alone is the other tables' business
    for (const auto& [bits, cells] : by_bits) {
      if (!cells[1] && !cells[2]) continue;
      std::vector<Cell> line{cell_text(model_with_setting(group, group.setting)), cell_text(group.benchmark),
                             cell_number(bits, 0)};
      for (const auto& c : cells) line.push_back(c ? *c : cell_not_run());
      t.rows.push_back(std::move(line));
    }
  }
  return t;
}

// Per-prompt agreement across the seeds of one KV label: over the prompts every seed answered,
// how many got the same verdict at every seed (over those every seed judged) and how many got
// byte-identical answers.
struct SeedAgreement {
  eval::Proportion same_verdict{};
  eval::Proportion identical{};
  std::int64_t judged = 0;    // prompts with a verdict at every seed
  std::int64_t answered = 0;  // prompts answered at every seed
};

SeedAgreement seed_agreement(const std::vector<const KvSummaryRow*>& rows) {
  SeedAgreement out;
  if (rows.size() < 2) return out;
  std::int64_t same = 0, identical = 0;
  for (const auto& [prompt, first] : rows.front()->seed_answers) {
    bool everywhere = true, judged = first.refused.has_value(), agree = true, equal = true;
    for (std::size_t i = 1; i < rows.size(); ++i) {
      const auto found = rows[i]->seed_answers.find(prompt);
      if (found == rows[i]->seed_answers.end()) {
        everywhere = false;
        break;
      }
      judged = judged && found->second.refused.has_value();
      agree = agree && found->second.refused == first.refused;
      equal = equal && found->second.text_hash == first.text_hash;
    }
    if (!everywhere) continue;
    ++out.answered;
    identical += equal ? 1 : 0;
    if (judged) {
      ++out.judged;
      same += agree ? 1 : 0;
    }
  }
  out.same_verdict = eval::wilson_interval(same, out.judged);
  out.identical = eval::wilson_interval(identical, out.answered);
  return out;
}

// The paper's seeds (mistral_seeds / multi_seeds): the same cells at several generation seeds.
// One row per seed and KV label with its refusal and conditional flip, then a row with their mean
// and sample standard deviation over the seeds. Greedy decoding ignores the seed, so a spread
// there means non-determinism; under sampling it is the metric's sampling noise.
Table seeds(const RunSummary& summary) {
  Table t{.name = "seeds",
          .caption =
              "The same cells at several generation seeds: refusal and conditional flip per seed, then mean "
              "and sample standard deviation over the seeds (in percentage points), the share of prompts every "
              "seed judged alike, and the share whose answers are byte-identical at every seed (greedy "
              "decoding ignores the seed: below 100% it is not deterministic).",
          .columns = {"Model", "Benchmark", "KV", "Seed", "Refusal", "Cond. flip", "Same verdict", "Identical answers"},
          .groups = {},
          .rows = {}};
  // (model, benchmark, subset, base setting) -> the groups, one per seed
  std::map<std::tuple<std::string, std::string, std::string, std::string>, std::vector<const SummaryGroup*>> by_key;
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "refusal" || !group.seed) continue;
    by_key[{table_model_name(group.model, group.steered), group.benchmark, group.subset, group.setting_without_seed}]
        .push_back(&group);
  }
  const auto mean_sd = [](const std::vector<double>& values) {
    double mean = 0;
    for (const double v : values) mean += v;
    mean /= static_cast<double>(values.size());
    double squares = 0;
    for (const double v : values) squares += (v - mean) * (v - mean);
    const double sd = values.size() > 1 ? std::sqrt(squares / static_cast<double>(values.size() - 1)) : 0.0;
    return fmt::format("{:.1f}% ± {:.1f} (n={} seeds)", 100 * mean, 100 * sd, values.size());
  };
  for (auto& [key, groups] : by_key) {
    if (groups.size() < 2) continue;
    std::sort(groups.begin(), groups.end(), [](const auto* a, const auto* b) { return *a->seed < *b->seed; });
    const std::string model = std::get<0>(key) + (std::get<3>(key).empty() ? "" : " (" + std::get<3>(key) + ")");
    const std::string benchmark = std::get<1>(key) + (std::get<2>(key).empty() ? "" : "/" + std::get<2>(key));
    std::vector<std::string> labels;  // every kv label of any seed, in the first group's order
    for (const auto* group : groups) {
      for (const KvSummaryRow& row : group->rows) {
        if (std::find(labels.begin(), labels.end(), row.kv_label) == labels.end()) labels.push_back(row.kv_label);
      }
    }
    for (const std::string& label : labels) {
      std::vector<double> refusals, flips;
      std::vector<const KvSummaryRow*> seed_rows;
      for (const auto* group : groups) {
        const auto row = std::find_if(group->rows.begin(), group->rows.end(),
                                      [&](const KvSummaryRow& r) { return r.kv_label == label; });
        if (row == group->rows.end()) {
          t.rows.push_back({cell_text(model), cell_text(benchmark), cell_text(label),
                            cell_number(static_cast<double>(*group->seed), 0), cell_not_run(), cell_not_run(),
                            cell_text(""), cell_text("")});
          continue;
        }
        seed_rows.push_back(&*row);
        if (row->refusal.rate.trials > 0) refusals.push_back(row->refusal.rate.rate);
        const bool has_flip = !row->baseline && group->flip_undefined.empty() && row->flip && row->flip->trials > 0;
        if (has_flip) flips.push_back(row->flip->rate);
        t.rows.push_back(
            {cell_text(model), cell_text(benchmark), cell_text(label),
             cell_number(static_cast<double>(*group->seed), 0),
             row->refusal.rate.trials > 0 ? cell_rate(row->refusal.rate) : cell_text("no verdict (0 judged)"),
             row->baseline ? cell_text("(baseline)") : group_flip_cell(*group, *row), cell_text(""), cell_text("")});
      }
      const SeedAgreement agreement = seed_agreement(seed_rows);
      t.rows.push_back(
          {cell_text(model), cell_text(benchmark), cell_text(label), cell_text("mean ± sd"),
           refusals.empty() ? cell_not_run() : cell_text(mean_sd(refusals)),
           flips.empty()
               ? cell_text(label == "none" ? "(baseline)" : "undefined: no seed's flip is defined")
               : cell_text(mean_sd(flips) + (flips.size() < groups.size()
                                                 ? fmt::format(", {} seed(s) undefined", groups.size() - flips.size())
                                                 : std::string())),
           agreement.judged > 0 ? cell_rate(agreement.same_verdict) : cell_not_run(),
           agreement.answered > 0 ? cell_rate(agreement.identical) : cell_not_run()});
    }
  }
  return t;
}

// Over-refusal (XSTest's over_refusal task): how often each KV setting refuses the safe prompts
// (the harm a too-cautious model does) beside how often it refuses the unsafe ones.
Table over_refusal(const RunSummary& summary) {
  Table t{.name = "over_refusal",
          .caption =
              "Over-refusal (XSTest): safe prompts refused, unsafe prompts refused, and the conditional flip vs "
              "full precision on the unsafe ones and, as the paper counts it, over every prompt the baseline "
              "refused (safe ones too). Wilson 95% intervals.",
          .columns = {"Model", "Benchmark", "KV", "Bits per element", "Safe refused (over-refusal)", "Unsafe refused",
                      "Cond. flip (unsafe)", "Cond. flip (all prompts, the paper's)"},
          .groups = {},
          .rows = {}};
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "over_refusal") continue;
    for (const KvSummaryRow& row : group.rows) {
      const eval::Proportion& complied = row.compliance.rate;
      t.rows.push_back(
          {cell_text(model_with_setting(group, group.setting)), cell_text(group.benchmark), cell_text(row.kv_label),
           cell_number(row.baseline ? 16.0 : row.effective_bits, 2),
           complied.trials > 0 ? cell_rate(complied.trials - complied.successes, complied.trials) : cell_not_run(),
           row.refusal.rate.trials > 0 ? cell_rate(row.refusal.rate) : cell_not_run(),
           row.baseline ? cell_text("(baseline)") : group_flip_cell(group, row),
           row.baseline            ? cell_text("(baseline)")
           : !row.flip_all_prompts ? cell_not_run()
                                   : flip_cell(row.flip_all_prompts->flip, row.flip_all_prompts->baseline_judged,
                                               summary.min_baseline_refusals)});
    }
  }
  return t;
}

}  // namespace kvsafe::report::detail
