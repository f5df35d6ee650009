#pragma once
// IFEval accuracy of a cell from its stored per-instruction verdicts (db table
// ifeval_verdicts, schema 9), as IFEval's reference reports it: prompt level = the share of
// prompts whose every instruction is followed, instruction level = the share of instructions
// followed, each strict and loose. An instruction stored without verdicts (it cannot be scored
// without guessing: eval::ifeval::ScoredInstruction) is left out of the instruction level, and
// its prompt out of the prompt level; both are counted apart so nothing disappears silently.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eval/statistics.h"

namespace kvsafe::report {

// One answer's verdicts, in instruction order; an empty optional is an unscored instruction.
struct IfevalPromptVerdicts {
  std::vector<std::optional<bool>> strict{};
  std::vector<std::optional<bool>> loose{};
  bool scored() const;      // every instruction has verdicts
  bool all_strict() const;  // scored, and every instruction followed (strict)
  bool all_loose() const;   // scored, and every instruction followed (loose)
};

struct IfevalAccuracy {
  eval::Proportion prompt_strict{};  // over the prompts with every instruction scored (Wilson 95% CI)
  eval::Proportion prompt_loose{};
  eval::Proportion inst_strict{};  // over the scored instructions
  eval::Proportion inst_loose{};
  std::int64_t prompts = 0;                // answers with verdict rows
  std::int64_t unscored_instructions = 0;  // stored without verdicts
  std::int64_t unscored_prompts = 0;       // prompts with at least one of those
};

// Per prompt index.
using IfevalCellVerdicts = std::map<std::int64_t, IfevalPromptVerdicts>;

IfevalAccuracy ifeval_accuracy(const IfevalCellVerdicts& verdicts);

// Prompt-level strict changes against a baseline over the prompts both scored: `lost` were
// followed at the baseline and are not here, `gained` the other way round.
struct IfevalChange {
  std::int64_t paired = 0;
  std::int64_t lost = 0;
  std::int64_t gained = 0;
};
IfevalChange ifeval_change(const IfevalCellVerdicts& cell, const IfevalCellVerdicts& baseline);

// Every cell's verdicts (by cell id) from the database at `db`, read-only; empty for a
// database from before schema 9.
std::map<std::string, IfevalCellVerdicts> read_ifeval_verdicts(const std::filesystem::path& db);

}  // namespace kvsafe::report
