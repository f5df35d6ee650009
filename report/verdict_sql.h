#pragma once
// Which judge's verdicts a report counts (issue 19: "a judge mix is refused unless --judge NAME
// picks one"). A generation carries its run's own verdict (generations.refused, the judge's label
// in judge_json's "judge") and any number of re-judgements (`kvsafe judge`, the judgements
// table, one per judge). The readers of report/ build their verdict column from here, so the run
// summary, the diagnosis and the paper's tables count the same verdicts.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kvsafe::report {

// The label under which generations whose judge_json names no judge (rows from before the
// label was stored) are listed and can be picked.
inline constexpr const char* kUnlabelledJudge = "(unlabelled)";

// SQL text quoted as a string literal ('it''s').
std::string sql_quoted(const std::string& text);

// An SQL expression for the verdict of the generation aliased `g` in a query on `db`: g.refused
// without a judge; with one, g.refused where the run's own judge has that label (kUnlabelledJudge:
// where it has none), else that judge's re-judgement (NULL, not judged by it, is never counted
// as compliance). A database from before the judgements table (schema < 3) has run verdicts only.
std::string verdict_sql(const std::filesystem::path& db, const std::optional<std::string>& judge);

// The label of the run's own judge of generation `g`, or NULL (older rows, malformed JSON).
std::string run_judge_label_sql();

struct JudgeVerdictCount {
  std::string label{};
  std::int64_t run_verdicts = 0;       // generations whose run judged them with this label
  std::int64_t rejudged_verdicts = 0;  // judgements rows with this label
  std::int64_t rejudge_keys = 0;       // distinct judge specs (judge_key) behind those rows
};

// Every judge label with a verdict in the database, by label.
std::vector<JudgeVerdictCount> judges_with_verdicts(const std::filesystem::path& db);

}  // namespace kvsafe::report
