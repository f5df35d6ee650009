#pragma once
// Internal to report/: speculative cells (generation.speculative, issue 22) in the run summary
// (report/run_summary.h, SpeculativeSummary) and the specdecode_flip table (speculative_summary.cpp).

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>

#include "report/run_summary.h"
#include "report/table.h"

namespace kvsafe::report::detail {

// generation.speculative of a cell's canonical JSON (orchestrator/cell_identity.h) as a summary
// row starts it: the draft's name, k and the quantized side; nullopt for a plain cell.
std::optional<SpeculativeSummary> speculative_settings(const std::string& canonical_json);

// How a group's setting writes generation.speculative: "small,k=4,quantize=target".
std::string speculative_setting_text(const nlohmann::json& speculative);

// One answer's statistics (judge_json "speculative": rounds, proposed, accepted); nullopt when
// the judge_json has none (a plain cell, or a malformed entry).
struct SpeculativeRounds {
  std::int64_t rounds = 0;
  std::int64_t proposed = 0;
  std::int64_t accepted = 0;
};
std::optional<SpeculativeRounds> speculative_rounds(const nlohmann::json& judge_json);

// A hash of each stored answer's bytes, by cell and prompt index, for `cell_ids` (the later row
// of a (cell, prompt) wins, as the summary's verdicts). Throws DbError when the database cannot be read.
std::map<std::string, std::map<std::int64_t, std::size_t>> answer_hashes(const std::filesystem::path& db,
                                                                         const std::set<std::string>& cell_ids);

// Of the prompts both cells answered, those whose answers are byte-identical (by hash).
eval::Proportion identical_answers(const std::map<std::int64_t, std::size_t>& a,
                                   const std::map<std::int64_t, std::size_t>& b);

// The line `kvsafe status --summary` prints under a speculative group: the draft, k, the
// quantized side and each row's acceptance rate; nothing for another group.
void write_speculative_line(const SummaryGroup& group, std::ostream& out);

// specdecode_flip (the paper's list; report/paper_tables.h): one row per speculative refusal
// cell, by model, draft, quantized side and KV label.
Table specdecode_flip(const RunSummary& summary);

}  // namespace kvsafe::report::detail
