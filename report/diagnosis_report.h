#pragma once
// The diagnosis report: what `kvsafe diagnose` prints, computed from a results database alone
// (the diagnosis_roles table says which cell is which arm; orchestrator/diagnosis_plan.h
// plans them). Per experiment and model: the layer profile with each layer's conditional flip
// and Wilson CI, the critical layers, PCR with its paired-bootstrap CI, the failure mode and
// prescribed fix with the rule that fired (eval/diagnosis.h), the cumulative curves, the
// validation on the test prompts, the protection sweep and the mitigation strategies with
// their recoveries and memory overhead. A number whose inputs are not all stored is absent,
// never guessed: the report says what it waits for.
//
// Flips are conditional on the baseline of the same prompt set (calibration or test), paired
// by prompt index; verdicts are generations.refused, the run's own judge.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "eval/diagnosis.h"
#include "eval/statistics.h"

namespace kvsafe::report {

// One arm of one task: its cell and, once stored, its rates.
struct DiagnosisArm {
  std::string task{};
  std::string arm{};
  std::string cell_id{};
  std::string kv_label{};
  double effective_bits = 16;              // the KV spec's (kv_specs.effective_bits)
  std::string status{};                    // the cell's status
  std::string detail_json{};               // the role's detail
  std::string prompts{};                   // "calibration" | "test"
  std::int64_t n_prompts = 0;              // the cell's prompts
  std::int64_t stored = 0;                 // generations stored
  eval::RateSummary refusal{};             // refused / judged
  std::optional<eval::Proportion> flip{};  // vs the prompt set's baseline, once both are done
  std::vector<eval::Outcome> outcomes{};   // by prompt index (kUnjudged where not stored)
  bool done() const { return status == "done"; }
};

struct CumulativePoint {
  std::string direction{};  // "front" | "back"
  std::int64_t count = 0;   // layers quantized
  eval::Proportion flip{};
};

struct ChannelAblationRow {
  std::string subset{};       // "per_tensor", "per_channel", "outliers", "random_matched", ...
  std::int64_t channels = 0;  // channels quantized (0: every channel, the per-tensor / per-channel references)
  eval::Proportion flip{};
};

struct ProtectionRow {
  int bits = 0;
  std::string protect{};  // "none" | "fp16" | "int8"
  // How the k layers were chosen: "critical" (the diagnosis's top k) or "key_norm" (the naive
  // baseline: the k layers with the largest keys, eval::layers_by_key_norm).
  std::string ranked_by = "critical";
  std::int64_t k = 0;  // layers protected
  std::vector<std::int64_t> layers{};
  eval::Proportion flip{};
  double recovery = 0;        // 1 - flip / flip(unprotected at these bits); NaN when that is 0
  double layer_overhead = 0;  // k / model layers (the paper's "memory overhead")
  double byte_overhead = 0;   // effective bits protected / unprotected - 1: what the KV cache really grows by
};

struct MitigationRow {
  int bits = 0;
  std::string strategy{};
  eval::Proportion refusal{};
  eval::Proportion flip{};
  double recovery = 0;  // (refusal - refusal_uniform) / (refusal_fp16 - refusal_uniform); NaN when nothing was lost
};

// The prescribed fix verified on one of the grid's refusal benchmarks at one bit width.
struct MitigateRow {
  std::string benchmark{};
  int bits = 0;
  std::string prescription{};
  std::optional<eval::Proportion> refusal_fp16{}, refusal_uniform{}, refusal_fix{};  // once each cell is done
  std::optional<eval::Proportion> flip_uniform{}, flip_fix{};
  double recovery = 0;  // (fix - uniform) / (fp16 - uniform) refusal; NaN when nothing was lost or a cell is missing
};

struct ModelDiagnosisReport {
  std::int64_t experiment_id = 0;
  std::string experiment{};
  std::string model{};
  std::int64_t model_layers = 0;
  std::int64_t bits = 0;
  double critical_flip_threshold = 0.10;
  double pcr_low = 0.30;
  double pcr_high = 0.70;
  bool explicit_critical = false;  // the grid named the critical layers

  std::vector<DiagnosisArm> arms{};                        // every role of the model, as stored
  std::optional<eval::RateSummary> calibration_refusal{};  // the calibration baseline, once done
  std::optional<eval::RateSummary> test_refusal{};

  std::vector<eval::LayerFlip> profile{};  // layers whose ablation cell is done, by layer
  std::int64_t profile_layers = 0;         // layers the grid ablates (0: no layer_ablation)
  // The critical layers once the whole profile is stored (or the grid named them).
  std::optional<eval::CriticalLayers> critical{};
  std::vector<std::string> critical_from{};  // the cells they were computed from
  std::optional<std::int64_t> pcr_layer{};
  std::optional<eval::PcrEstimate> pcr{};
  std::optional<eval::Diagnosis> diagnosis{};
  std::vector<std::string> diagnosis_from{};  // the cells whose results decided it
  std::vector<MitigateRow> mitigate{};        // mitigate: auto
  std::vector<CumulativePoint> cumulative{};
  // pcr_validation on the test prompts (all layers).
  std::optional<eval::Proportion> test_per_tensor{}, test_per_channel{}, test_group64{};
  std::optional<double> test_pcr{}, group64_reduction{};
  std::optional<eval::PcrPrediction> prediction{};
  // Channel ablation at the critical layer: max |K| per channel (per layer, from the
  // key_magnitudes cell once done), the outlier rule's result there, each subset's flip.
  std::map<int, std::vector<float>> channel_max_abs{};
  std::string key_magnitudes_cell{};
  std::optional<std::int64_t> channel_layer{};
  std::optional<eval::OutlierChannels> outliers{};
  std::vector<ChannelAblationRow> channel_ablation{};
  std::optional<double> causal_ratio{};  // flip(outliers) / flip(random matched)
  std::vector<ProtectionRow> protection{};
  std::vector<MitigationRow> mitigation{};
  std::vector<std::string> notes{};  // what is missing or undefined, in plain words
};

struct DiagnosisReport {
  std::vector<ModelDiagnosisReport> models{};  // by experiment, then model
};

struct DiagnosisReportOptions {
  std::optional<std::int64_t> experiment_id{};  // only this experiment
  std::optional<std::string> model{};           // only this model
  // A baseline that refused fewer prompts leaves flips "undefined" in the notes (issue 25).
  std::int64_t min_baseline_refusals = 10;
  // The critical layers from the stored ablation profile even when the grid named them (the
  // run-time derivation, runner/diagnosis_derivation.h, plans the grid's own itself).
  bool critical_from_profile = false;
  // Count this judge's verdicts (report/verdict_sql.h); unset: the run's own.
  std::optional<std::string> judge{};
};

// Reads `db` read-only (safe while a run writes). An older database without the
// diagnosis_roles table gives an empty report. Throws DbError when it cannot be read.
DiagnosisReport read_diagnosis_report(const std::filesystem::path& db, const DiagnosisReportOptions& options = {});

// Plain text, one block per model: the constants, the baselines, a per-layer bar of flips,
// critical layers, PCR [CI], mode and fix with the rule, then whatever else is stored.
void print_diagnosis_report(std::ostream& out, const DiagnosisReport& report);

}  // namespace kvsafe::report
