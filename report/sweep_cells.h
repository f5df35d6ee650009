#pragma once
// Internal to report/: which run-summary rows belong to the paper's per-token asymmetric sweep
// (the int<b>-ptok-asym cells its §4 tables are over), shared by the table writers.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "report/run_summary.h"
#include "report/table.h"

namespace kvsafe::report::detail {

// A row's bit width when its label is a cell of the paper's sweep: int, per-token on both
// sides, asymmetric, every layer, nothing kept exact; nullopt otherwise (or a renamed label).
std::optional<int> sweep_bits(const std::string& label);

// A row's bit width and quantized side when its label is the sweep's quantizer on one side only
// (int<b>v16-ptok-asym: keys only; int16v<b>-ptok-asym: values only); nullopt otherwise.
struct OneSide {
  int bits = 0;
  bool keys = true;  // keys quantized, values exact; false: the other way round
};
std::optional<OneSide> one_side_bits(const std::string& label);

// A refusal group's cells on the sweep that have a flip, by bit width, widest first.
std::map<int, const KvSummaryRow*, std::greater<>> refusal_sweep(const SummaryGroup& group);

// A conditional flip cell: the rate, or "undefined: the baseline refused k of n" below the
// summary's threshold.
Cell flip_cell(const eval::Proportion& flip, std::int64_t baseline_judged, std::int64_t min_baseline_refusals);

// The tables of suite_tables.cpp (each may come back with no row).
Table custom_all_models(const RunSummary& summary);
Table mse_phase(const RunSummary& summary);
Table cross_suite_compare(const RunSummary& summary);
Table seeds(const RunSummary& summary);
Table kv_asymmetry(const RunSummary& summary);
Table over_refusal(const RunSummary& summary);
// ifeval_tables.cpp: IFEval accuracy beside refusal and flip, per model and KV quantizer.
Table ifeval_tradeoff(const RunSummary& summary);

}  // namespace kvsafe::report::detail
