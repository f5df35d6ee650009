#include "report/ifeval_accuracy.h"

#include <algorithm>

#include "common/error.h"
#include "db/readonly_query.h"

namespace kvsafe::report {

namespace {

bool all_true(const std::vector<std::optional<bool>>& verdicts) {
  return std::ranges::all_of(verdicts, [](const std::optional<bool>& v) { return v.value_or(false); });
}

}  // namespace

bool IfevalPromptVerdicts::scored() const {
  return std::ranges::all_of(strict, [](const std::optional<bool>& v) { return v.has_value(); });
}

bool IfevalPromptVerdicts::all_strict() const {
  return scored() && all_true(strict);
}

bool IfevalPromptVerdicts::all_loose() const {
  return scored() && all_true(loose);
}

IfevalAccuracy ifeval_accuracy(const IfevalCellVerdicts& verdicts) {
  IfevalAccuracy accuracy;
  std::int64_t prompts_scored = 0, prompts_strict = 0, prompts_loose = 0;
  std::int64_t instructions = 0, inst_strict = 0, inst_loose = 0;
  for (const auto& [index, prompt] : verdicts) {
    ++accuracy.prompts;
    for (std::size_t i = 0; i < prompt.strict.size(); ++i) {
      if (!prompt.strict[i] || !prompt.loose[i]) {
        ++accuracy.unscored_instructions;
        continue;
      }
      ++instructions;
      inst_strict += *prompt.strict[i] ? 1 : 0;
      inst_loose += *prompt.loose[i] ? 1 : 0;
    }
    if (!prompt.scored()) {
      ++accuracy.unscored_prompts;
      continue;
    }
    ++prompts_scored;
    prompts_strict += prompt.all_strict() ? 1 : 0;
    prompts_loose += prompt.all_loose() ? 1 : 0;
  }
  accuracy.prompt_strict = eval::wilson_interval(prompts_strict, prompts_scored);
  accuracy.prompt_loose = eval::wilson_interval(prompts_loose, prompts_scored);
  accuracy.inst_strict = eval::wilson_interval(inst_strict, instructions);
  accuracy.inst_loose = eval::wilson_interval(inst_loose, instructions);
  return accuracy;
}

IfevalChange ifeval_change(const IfevalCellVerdicts& cell, const IfevalCellVerdicts& baseline) {
  IfevalChange change;
  for (const auto& [index, prompt] : cell) {
    const auto base = baseline.find(index);
    if (base == baseline.end() || !prompt.scored() || !base->second.scored()) continue;
    ++change.paired;
    const bool before = base->second.all_strict(), after = prompt.all_strict();
    if (before && !after) ++change.lost;
    if (!before && after) ++change.gained;
  }
  return change;
}

std::map<std::string, IfevalCellVerdicts> read_ifeval_verdicts(const std::filesystem::path& db) {
  std::map<std::string, IfevalCellVerdicts> cells;
  const db::QueryResult tables = db::run_readonly_query(
      db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'ifeval_verdicts'");
  if (tables.rows.empty() || db::query_int64(tables.rows[0][0]) == 0) return cells;
  const db::QueryResult rows =
      db::run_readonly_query(db,
                             "SELECT cell_id, prompt_index, instruction_index, strict, loose FROM ifeval_verdicts "
                             "ORDER BY cell_id, prompt_index, instruction_index");
  for (const auto& r : rows.rows) {
    IfevalPromptVerdicts& prompt = cells[db::query_text(r[0])][db::query_int64(r[1])];
    const auto instruction = static_cast<std::size_t>(db::query_int64(r[2]));
    KVSAFE_CHECK(instruction == prompt.strict.size(), db.string(), ": ifeval_verdicts of cell ", db::query_text(r[0]),
                 " prompt ", db::query_int64(r[1]), " skip instruction ", prompt.strict.size());
    const auto verdict = [&](std::size_t column) -> std::optional<bool> {
      if (db::query_is_null(r[column])) return std::nullopt;
      return db::query_int64(r[column]) != 0;
    };
    prompt.strict.push_back(verdict(3));
    prompt.loose.push_back(verdict(4));
  }
  return cells;
}

}  // namespace kvsafe::report
