// kvsafe's "useful and safe" table (issue 22): IFEval accuracy per KV quantizer beside the same
// model's refusal rate and conditional flip on each refusal benchmark entry, so the bit width
// where instruction following survives can be read against the one where refusals do.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "report/paper_tables.h"
#include "report/sweep_cells.h"

namespace kvsafe::report::detail {
namespace {

std::string entry_name(const SummaryGroup& group) {
  return group.benchmark + (group.setting.empty() ? "" : " (" + group.setting + ")");
}

// A refusal row's conditional flip: the rate, "undefined: ..." when its group's baseline refused
// too few, "(baseline)" for the full-precision cell.
Cell refusal_flip(const SummaryGroup& group, const KvSummaryRow& row) {
  if (row.baseline) return cell_text("(baseline)");
  if (!group.flip_undefined.empty()) return cell_text(group.flip_undefined);
  if (!row.flip) return cell_not_run();
  if (row.flip->trials == 0) return cell_text(fmt::format("undefined: the baseline refused 0 of {}", row.paired));
  return cell_rate(*row.flip);
}

}  // namespace

Table ifeval_tradeoff(const RunSummary& summary) {
  Table t{.name = "ifeval_tradeoff",
          .caption =
              "Per model and KV quantizer: IFEval accuracy (prompt-level strict, instruction-level loose; "
              "strict prompt-level verdicts lost and gained against full precision) beside the refusal rate "
              "on harmful prompts and the conditional flip of each refusal benchmark entry of the same model.",
          .columns = {"Model", "KV", "Bits", "IFEval prompt strict", "IFEval inst loose", "Lost / gained"},
          .groups = {},
          .rows = {}};
  // Refusal entries of the models that have IFEval cells, in summary order; each gets two columns.
  std::set<std::string> ifeval_models;
  for (const SummaryGroup& group : summary.groups) {
    if (group.task == "ifeval") ifeval_models.insert(table_model_name(group.model, group.steered));
  }
  std::vector<std::string> entries;
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "refusal" || !ifeval_models.contains(table_model_name(group.model, group.steered))) continue;
    const std::string entry = entry_name(group);
    if (std::find(entries.begin(), entries.end(), entry) == entries.end()) entries.push_back(entry);
  }
  for (const std::string& entry : entries) {
    t.columns.push_back("Refusal " + entry);
    t.columns.push_back("Flip " + entry);
  }
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "ifeval") continue;
    const std::string model = table_model_name(group.model, group.steered);
    const std::string shown = model + (group.setting.empty() ? "" : " (" + group.setting + ")");
    for (const KvSummaryRow& row : group.rows) {
      if (!row.ifeval) continue;
      std::vector<Cell> line{cell_text(shown), cell_text(row.kv_label), cell_number(row.effective_bits, 2),
                             cell_rate(row.ifeval->prompt_strict), cell_rate(row.ifeval->inst_loose)};
      if (row.baseline) {
        line.push_back(cell_text("(baseline)"));
      } else if (row.ifeval_change && row.ifeval_change->paired > 0) {
        line.push_back(cell_text(fmt::format("-{} / +{} of {}", row.ifeval_change->lost, row.ifeval_change->gained,
                                             row.ifeval_change->paired)));
      } else {
        line.push_back(cell_not_run());
      }
      for (const std::string& entry : entries) {
        const KvSummaryRow* match = nullptr;
        const SummaryGroup* match_group = nullptr;
        for (const SummaryGroup& refusal : summary.groups) {
          if (refusal.task != "refusal" || table_model_name(refusal.model, refusal.steered) != model ||
              entry_name(refusal) != entry) {
            continue;
          }
          for (const KvSummaryRow& candidate : refusal.rows) {
            if (candidate.kv_label == row.kv_label) {
              match = &candidate;
              match_group = &refusal;
            }
          }
        }
        if (match == nullptr) {
          line.push_back(cell_not_run());
          line.push_back(cell_not_run());
          continue;
        }
        line.push_back(cell_rate(match->refusal.rate));
        line.push_back(refusal_flip(*match_group, *match));
      }
      t.rows.push_back(std::move(line));
    }
  }
  return t;
}

}  // namespace kvsafe::report::detail
