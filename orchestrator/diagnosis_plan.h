#pragma once
// The diagnosis protocol's cells (arXiv 2606.09864 §5-6; ../shared/reference/
// paper_and_quantizers.md §1.5-1.7), as ordinary refusal cells with a role each. Pure: the
// caller says what is known about each diagnosed model (its layer count, and once the layer
// ablation is stored, its critical layers), and gets back every cell that can be planned with
// that knowledge. Called again with more knowledge it returns a superset: the same cells with
// the same ids, plus the ones that were waiting. That is how the scheduler adds dependent
// cells while a run goes on, and why a resume with any number of ranks finds the same cells.
//
// Prompt sets: "calibration" = the first diagnose.calibration_prompts of the custom set (in
// the paper's order refusal, privacy, jailbreak); "test" = the first diagnose.test_prompts of
// AdvBench. Generation: the grid's first generation settings, max_new_tokens from diagnose
// when set. Every experiment has the full-precision cell of its prompt set as its baseline.
//
// What each task adds (bits b = diagnose.bits; "int b ptensor sym" = the paper's §5 preset):
//   layer_ablation    calibration; layer L alone at int b ptensor sym, for every L.
//   cumulative        calibration; layers [0, k) and [n-k, n) at int b ptensor sym, k = 1..n.
//   pcr               calibration; the top critical layer alone at int b, ptensor and pchan sym.
//                     Waits for the critical layers (layer ablation or diagnose.critical_layers).
//   pcr_validation    test; every layer at int b sym ptensor, pchan, and group-64.
//   protection_sweep  test; for each bits m of diagnose.mitigation_bits: every layer per-token
//                     asym (unprotected), and the top-k critical layers at FP16 or int8 ptensor
//                     sym with the rest per-token asym, for k in diagnose.protect_top_k (k
//                     capped at the critical layers found). Waits for the critical layers.
//   channel_ablation  calibration; a key_magnitudes cell (each prompt alone at full precision:
//                     max |K| per channel and layer), then, once it and the critical layers are
//                     stored, the top critical layer c at int b ptensor sym with only a channel
//                     subset quantized (statistics over the subset): outliers, the random matched
//                     control, non-outliers, low-magnitude, random 1/5/10/25/50% (the subsets come
//                     from eval::channel_ablation_subsets, computed by the caller); per tensor
//                     (the ablation cell) and per channel as references. Subsets with no channel
//                     are skipped. The subsets apply to keys and values alike (one channel index
//                     space, kv_heads x head_dim).
//   mitigate          (`mitigate: auto`) the grid's refusal benchmarks, first generation
//                     entry; for each m: full precision, uniform (int m per-token asym) and the
//                     prescribed fix at m bits: fp16_critical_layer = uniform + those layers at
//                     FP16; fp16_top_k = the same with the top k; per_channel_critical_group64_rest
//                     = group-64 asym + per-channel asym at the critical layer; group64_all =
//                     group-64 asym. full_fp16 and none have nothing quantized to verify. Waits for
//                     the fix.
//   mitigation        test; for each m: per_token asym (uniform), per_channel asym, group-64
//                     asym on every layer, and once the critical layer c is known:
//                     fp16_critical (c at FP16, the rest ptensor asym, as the paper's code
//                     does), fp16_critical_clean (the rest per-token asym, one change from
//                     uniform), perchannel_critical+ptensor, perchannel_critical+group64.
// Cells planned from the critical layers carry derived_from: the ids of the baseline and
// layer-ablation cells they came from (none when the grid names the layers).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "orchestrator/cell.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::orchestrator {

// The part a cell plays in a model's diagnosis. One cell may play several (the layer-ablation
// cell of the critical layer is also PCR's per-tensor arm); each is one role.
struct DiagnosisRole {
  std::string cell_id{};
  std::string model{};
  std::string task{};         // a DiagnosisTask name, or "baseline"
  std::string arm{};          // unique within (model, task): "layer 3", "front 2", "per_channel", ...
  std::string detail_json{};  // what the report needs: {"layer":3}, {"k":2,"protect":"fp16","bits":4}, ...
};

// What is known about one diagnosed model.
// A named channel subset of the critical layer ("outliers", "random_matched", "non_outliers",
// "low_magnitude", "random_5pct", ...), channel ids ascending.
struct ChannelSubset {
  std::string name{};
  std::vector<int> channels{};
};

// The fix the diagnosis prescribed (eval::Diagnosis), once its inputs are stored.
struct PrescribedFix {
  std::string prescription{};               // eval::to_string(Prescription): "fp16_critical_layer", ...
  std::vector<int> layers{};                // the layers it names, worst first
  std::vector<std::string> decided_from{};  // the cells whose results decided it
};

struct ModelDiagnosisFacts {
  std::string model{};                         // a grid model name
  std::int64_t layers = 0;                     // decoder layers (> 0)
  std::optional<std::vector<int>> critical{};  // ranked critical layers once decided (may be empty: none)
  std::vector<std::string> critical_from{};    // cell ids the critical layers were computed from
  // The channel subsets at the top critical layer, once its key magnitudes are stored.
  std::optional<std::vector<ChannelSubset>> channel_subsets{};
  std::vector<std::string> channels_from{};  // the key_magnitudes cell they were computed from
  // Every layer by descending key norm (eval::layers_by_key_norm), once the key magnitudes are
  // stored: protection_sweep's naive baseline protects the top k of these.
  std::optional<std::vector<int>> key_norm_layers{};
  std::vector<std::string> key_norm_from{};  // the key_magnitudes cell they were computed from
  std::optional<PrescribedFix> fix{};        // once the failure mode is decided
};

struct DiagnosisPlan {
  std::vector<Cell> cells{};  // each cell once, in planning order
  std::vector<DiagnosisRole> roles{};
  std::vector<std::string> waiting{};  // "smollm2: pcr waits for the critical layers", one per blocked task
};

// The cells of grid.diagnose.tasks (or `tasks` when given) for the models in `facts`. A model
// whose critical layers the grid names (diagnose.critical_layers) needs no ablation result.
// Throws InputError for a model name that is not in the grid or a layer >= its layer count.
DiagnosisPlan plan_diagnosis(const GridSpec& grid, const std::vector<ModelDiagnosisFacts>& facts,
                             const std::vector<DiagnosisTask>& tasks);

// What `kvsafe plan` shows of a grid's diagnosis before anything ran: the cells that can be
// planned now, and an estimate of those a run will derive once their inputs are stored
// (planned as if every model had max(protect_top_k) critical layers, the paper's nine channel
// subsets and a quantizing fix; their ids are not the real ones, only their count and cost are
// meant: an upper bound but for small models, where some random subsets are empty).
struct DiagnosisOutlook {
  std::vector<Cell> planned{};
  std::vector<Cell> to_be_derived{};
};
// `layers`: each diagnosed model's layer count (models without one are left out).
DiagnosisOutlook diagnosis_outlook(const GridSpec& grid,
                                   const std::vector<std::pair<std::string, std::int64_t>>& layers,
                                   const std::vector<DiagnosisTask>& tasks);

// The models a grid diagnoses: diagnose.models, else every model.
std::vector<std::string> diagnosed_models(const GridSpec& grid);

// The prompt sets' benchmark entries (for planning and the report).
BenchmarkSpec calibration_benchmark(const DiagnoseSpec& diagnose);
BenchmarkSpec test_benchmark(const DiagnoseSpec& diagnose);

}  // namespace kvsafe::orchestrator
