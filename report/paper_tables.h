#pragma once
// The paper's tables (../shared/reference/paper_and_quantizers.md §1.8) that `kvsafe tables`
// writes, filled from a results database. Each table is known by the paper's name; the ones
// kvsafe cannot fill yet are listed too, so `kvsafe tables --list` says what is missing.
//
// Built so far (issue 19, from the diagnosis: report/diagnosis_report.h), one row per model
// (and layer, subset, bit width where the table is per those):
//   taxonomy                      model | critical layers | PCR [CI] | mode | prescribed fix
//   individual_layer_sensitivity  model, layer | flip (that layer alone at diagnose.bits) | KV MSE | critical
//   pcr_framework                 model | critical layer | PCR | per-tensor flip | group-64 flip |
//                                 group-64 reduction | check (PCR>0.5 ∧ red.>0.3 or PCR<0.3 ∧ red.<0.1)
//                                 (flips on the test prompts, every layer quantized)
//   channel_ablation_all          model, subset | channels | flip (only those channels of the critical layer)
//   protection_sweep              model, bits, protection, k | flip | recovery | layer and KV-byte overhead
//   mitigation_main               model, bits | FP16 | uniform | mixed (fp16_critical) | recovery
//   cross_model_layer_summary     model | layers profiled | critical count, layers | most sensitive
//                                 layer and its flip | mean flip | hyper-vulnerable
//   decision_tree                 the rows of eval::diagnose in order | condition | mode | fix | the
//                                 models whose stored diagnosis fired that row
//   protection_comparison         model, bits, k | FP16 and 8-bit protection side by side: flip,
//                                 recovery, KV byte overhead
//   protocol_validation           model, benchmark, bits | PCR | fix | uniform flip | fixed flip |
//                                 recovery | FP16 layers (mitigate: auto)
// and from the run summary (report/run_summary.h), per model and refusal benchmark entry, over
// the paper's per-token asymmetric sweep (int<b>-ptok-asym cells; others, and cells whose label
// a grid renamed, are not part of it):
//   advbench_main                 model, bits | baseline refusal | quantized refusal | flip (changed
//                                 either way / pairs) | cond. flip
//   std_metrics                   model, KV | bits per element | memory (16 / bits) | ppl | ppl ratio
//   multi_model_ppl               model (and perplexity entry) | ppl at 16 (full precision) and each
//                                 width of the sweep present, with the ratio to full precision
//   phase_thresholds              model, benchmark | bits | safe zone (every width from the top down
//                                 with flip < 5%) | collapse begins (the highest width with flip
//                                 >= 50%) | complete collapse (the highest with flip >= 80%)
//   custom_all_models             model, bits | KV MSE keys, values | conditional flip per custom
//                                 subset (refusal, privacy = leak, jailbreak), from prompts.category
//   mse_phase                     model, benchmark, bits | KV MSE keys, values | first-token KL | flip
//   cross_suite_compare           model, bits | flip per refusal benchmark (two or more present)
//   seeds                         model, benchmark, KV, seed | refusal | flip; then mean ± sd over seeds,
//                                 the share of prompts with one verdict at every seed, and with
//                                 byte-identical answers
//   kv_asymmetry                  model, benchmark, bits | flip with K and V, K only, V only quantized
//                                 (the paper's deepseek_asymmetry)
//   over_refusal                  model, benchmark, KV | safe prompts refused | unsafe refused | flip
//                                 (XSTest; not in the paper's list)
//   ifeval_tradeoff               model, KV, bits | IFEval prompt strict | inst loose | lost / gained
//                                 vs full precision | refusal and flip per refusal entry of the model
//                                 (issue 22's "useful and safe"; not in the paper's list)
//   specdecode_flip               model, benchmark, draft, k, quantized side, KV | refusal | cond. flip
//                                 vs the plain greedy full-precision cell (else the speculative one) |
//                                 acceptance | answers identical to plain greedy at the same target KV
//                                 (speculative_summary.cpp)
// Every rate carries n and its Wilson 95% CI; a number whose inputs are not stored is "not run".

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "report/diagnosis_report.h"
#include "report/refusal_direction_report.h"
#include "report/run_summary.h"
#include "report/table.h"

namespace kvsafe::report {

struct PaperTableInfo {
  std::string_view name{};
  std::string_view source{};  // what fills it ("diagnose: layer_ablation"), or "not built yet: ..."
  bool built = false;
};

// A table's model cell: the name, marked "(steered, not aligned)" for a steered testbed (issue
// 25; `steered` is SummaryGroup::steered or DirectionGroup::steered), never the name alone.
std::string table_model_name(const std::string& model, const std::string& steered);

// Every table name of the paper that kvsafe knows, in §1.8's order.
const std::vector<PaperTableInfo>& paper_tables();

// The built tables from a diagnosis report (paper_tables.cpp), a run summary (summary_tables.cpp)
// and a refusal direction report (direction_tables.cpp); a table with no row is left out.
std::vector<Table> diagnosis_tables(const DiagnosisReport& report);
std::vector<Table> summary_tables(const RunSummary& summary);
// kvsafe's own, beyond the paper (issue 18 §4), from a refusal direction report; listed after
// the paper's in paper_tables() with "not in the paper" in their source:
//   refusal_direction_erosion     model, KV | mean erosion (‖r‖²-weighted) | largest | at layer |
//                                 lowest cos(r_q, r) | prompts
//   refusal_direction_prediction  model, refusal entry | quantizers | Spearman rho | p | note
std::vector<Table> direction_tables(const RefusalDirectionReport& report);

}  // namespace kvsafe::report
