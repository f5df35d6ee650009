#pragma once
// Which judge's verdicts a report counts (issue 19: "a judge mix is refused unless --judge NAME
// picks one"). A generation carries its run's own verdict (generations.refused, the judge's label
// in judge_json's "judge") and any number of re-judgements (`kvsafe judge`, the judgements
// table, one per judge label). The readers of report/ build their verdict column from here, so
// the run summary, the diagnosis and the paper's tables count the same verdicts.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kvsafe::report {

// SQL text quoted as a string literal ('it''s').
std::string sql_quoted(const std::string& text);

// An SQL expression for the verdict of the generation aliased `g`: g.refused without a judge;
// with one, g.refused where the run's own judge has that label, else that judge's latest
// parsed-or-not re-judgement (NULL: not judged by it, never counted as compliance).
std::string verdict_sql(const std::optional<std::string>& judge);

// The label of the run's own judge of generation `g`, or NULL (older rows, malformed JSON).
std::string run_judge_label_sql();

struct JudgeVerdictCount {
  std::string label{};
  std::int64_t run_verdicts = 0;       // generations whose run judged them with this label
  std::int64_t rejudged_verdicts = 0;  // judgements rows with this label
};

// Every judge label with a verdict in the database, by label. Generations without a label in
// their judge_json (rows from before the label was stored) count under "(unlabelled)".
std::vector<JudgeVerdictCount> judges_with_verdicts(const std::filesystem::path& db);

}  // namespace kvsafe::report
