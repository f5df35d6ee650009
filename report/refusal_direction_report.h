#pragma once
// The judge-free diagnostic (issue 18 §4) from a results database: per model and calibration
// entry, the refusal direction of every layer (the full-precision cell's harmful minus harmless
// mean residual at the last prompt token) and its erosion under each KV quantizer of the grid
// (eval/refusal_direction.h), then how well the erosion orders the quantizers as their measured
// conditional flips do (Spearman's rho, eval/rank_correlation.h).
//
// Groups: cells of one model identity (its canonical JSON: name, dtype, chat template, steering)
// and calibration entry; flips come from refusal groups of the same model name and steering.
//
// Inputs: refusal_direction cells (benchmark calibration; db table direction_sums holds their
// per-shard class sums). Only done cells count: a cell's mean over part of its prompts would be
// another prompt set. The baseline is the group's kv "none" cell. Flips come from the run
// summary (report/run_summary.h): per refusal-task group of the same model, the quantizers whose
// kv label both have; a quantizer whose flip is undefined (the baseline refused nothing) is left
// out, and the correlation needs three quantizers.
//
// Summary of a quantizer ("mean erosion"): the per-layer erosions averaged with weights ‖r_l‖²,
// which is the erosion of the direction of all layers stacked into one vector,
// Σ (μ⁺ − μ⁺_q)·r_l / Σ ‖r_l‖². An unweighted mean would let the first layers, where the classes
// barely separate (SmolLM2: ‖r‖ 0.5 at layer 0 against 192 at layer 29), swing it with erosions
// of ±10. The largest per-layer erosion and its layer are reported beside it.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "eval/rank_correlation.h"
#include "eval/refusal_direction.h"
#include "eval/statistics.h"

namespace kvsafe::report {

struct DirectionCell {
  std::string cell_id{};
  std::string kv_label{};
  double effective_bits = 16;
  std::string status{};
  std::int64_t harmful_prompts = 0;  // summed so far (all shards, done or not)
  std::int64_t harmless_prompts = 0;
  // Per layer once this cell and the baseline are done (empty otherwise); a layer where the
  // direction is 0 has no value.
  std::vector<std::optional<eval::LayerErosion>> layers{};
  std::optional<double> mean_erosion{};  // weighted by ‖r_l‖² (above)
  std::optional<std::int64_t> max_erosion_layer{};
  std::optional<double> max_erosion{};
};

// One quantizer's point of the prediction: its mean erosion and measured flip.
struct ErosionFlipPoint {
  std::string kv_label{};
  double mean_erosion = 0;
  eval::Proportion flip{};
};

struct ErosionPrediction {
  std::string benchmark{};  // the refusal group whose flips are predicted
  std::string setting{};
  std::vector<ErosionFlipPoint> points{};  // by effective bits descending
  std::optional<eval::RankCorrelation> correlation{};
  std::string note{};  // why there is no correlation, when there is none
};

struct DirectionGroup {
  std::string model{};
  std::string steered{};  // report::cell_steering of its cells: "" unless the model is steered
  std::string setting{};  // the calibration entry's settings (limit, sample, seed)
  std::string baseline_cell{};
  std::int64_t layers = 0;
  std::vector<double> direction_norm{};                      // ‖r‖ per layer, once the baseline is done
  std::vector<std::vector<double>> direction{};              // r per layer (harmful − harmless mean), likewise
  std::int64_t baseline_harmful = 0, baseline_harmless = 0;  // the prompts r is over
  std::vector<DirectionCell> cells{};                        // quantized cells, by effective bits descending
  std::vector<ErosionPrediction> predictions{};
  std::vector<std::string> notes{};
};

struct RefusalDirectionReport {
  std::vector<DirectionGroup> groups{};  // by model, then setting
};

struct RefusalDirectionReportOptions {
  std::optional<std::int64_t> experiment_id{};  // only this experiment's cells
  std::optional<std::string> model{};           // only this model
  // A refusal baseline that refused fewer prompts keeps its flips in the prediction, with a
  // note that they rest on few prompts (0 refusals: no flip, so no prediction).
  std::int64_t min_baseline_refusals = 10;
  // The refusal cells' verdicts: this judge's (report/verdict_sql.h); unset: the run's own.
  std::optional<std::string> judge{};
};

// Reads `db` read-only. A database without refusal_direction cells gives an empty report.
// Throws DbError when it cannot be read.
RefusalDirectionReport read_refusal_direction_report(const std::filesystem::path& db,
                                                     const RefusalDirectionReportOptions& options = {});

// Plain text: per group, a layers x quantizers table of erosion (with ‖r‖), each quantizer's
// mean and largest erosion and its direction cosine, then the predictions.
void print_refusal_direction_report(std::ostream& out, const RefusalDirectionReport& report);

}  // namespace kvsafe::report
