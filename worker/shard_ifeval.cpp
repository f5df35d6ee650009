// ifeval shards are generation shards (shard_generation.cpp) whose answers are also scored
// against the prompt's instructions: one db::IfevalVerdictRow per instruction.

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "eval/ifeval_instructions.h"
#include "worker/shard_internal.h"

namespace kvsafe::worker::detail {

std::vector<db::IfevalVerdictRow> ifeval_verdict_rows(const eval::Prompt& prompt, std::int64_t prompt_index,
                                                      std::string_view answer) {
  KVSAFE_CHECK(!prompt.ifeval_instructions.empty(), "prompt ", prompt.prompt_id,
               " carries no IFEval instructions (is the benchmark ifeval?)");
  const nlohmann::json input = nlohmann::json::parse(prompt.ifeval_instructions);
  const std::vector<eval::ifeval::Instruction> instructions = eval::ifeval::instructions_from_input(input);
  std::vector<db::IfevalVerdictRow> rows;
  std::int64_t index = 0;
  for (eval::ifeval::ScoredInstruction& scored : eval::ifeval::score_instructions(instructions, answer)) {
    rows.push_back({.prompt_index = prompt_index,
                    .instruction_index = index++,
                    .instruction_id = std::move(scored.id),
                    .strict = scored.strict,
                    .loose = scored.loose,
                    .unscored = std::move(scored.unscored)});
  }
  return rows;
}

}  // namespace kvsafe::worker::detail
