#include "report/database_tables.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "common/error.h"
#include "report/diagnosis_report.h"
#include "report/paper_tables.h"
#include "report/refusal_direction_report.h"
#include "report/run_summary.h"

namespace kvsafe::report {
namespace {

// "keyword:default:substring (120 run verdicts), model:wildguard (120 re-judged)".
std::string judge_list(const std::vector<JudgeVerdictCount>& judges) {
  std::string out;
  for (const JudgeVerdictCount& j : judges) {
    std::string counts;
    if (j.run_verdicts > 0) counts = fmt::format("{} run verdicts", j.run_verdicts);
    if (j.rejudged_verdicts > 0) {
      counts += fmt::format("{}{} re-judged", counts.empty() ? "" : ", ", j.rejudged_verdicts);
    }
    out += fmt::format("{}{} ({})", out.empty() ? "" : ", ", j.label, counts);
  }
  return out.empty() ? "none" : out;
}

}  // namespace

std::vector<Table> database_tables(const std::filesystem::path& db, const DatabaseTableOptions& options) {
  std::map<std::string, Table> filled;
  DiagnosisReportOptions diagnosis;
  diagnosis.min_baseline_refusals = options.min_baseline_refusals;
  diagnosis.judge = options.judge;
  for (Table& table : diagnosis_tables(read_diagnosis_report(db, diagnosis))) {
    filled.emplace(table.name, std::move(table));
  }
  for (Table& table : summary_tables(
           summarize_run(db, {.min_baseline_refusals = options.min_baseline_refusals, .judge = options.judge}))) {
    filled.emplace(table.name, std::move(table));
  }
  RefusalDirectionReportOptions direction;
  direction.min_baseline_refusals = options.min_baseline_refusals;
  direction.judge = options.judge;
  for (Table& table : direction_tables(read_refusal_direction_report(db, direction))) {
    filled.emplace(table.name, std::move(table));
  }
  std::vector<Table> out;
  for (const PaperTableInfo& info : paper_tables()) {
    if (auto found = filled.find(std::string(info.name)); found != filled.end())
      out.push_back(std::move(found->second));
  }
  return out;
}

std::optional<std::string> choose_judge(const std::filesystem::path& db, const std::string& requested) {
  const std::vector<JudgeVerdictCount> judges = judges_with_verdicts(db);
  if (!requested.empty()) {
    const auto found = std::find_if(judges.begin(), judges.end(), [&](const auto& j) { return j.label == requested; });
    KVSAFE_CHECK(found != judges.end(), "--judge ", requested, ": no verdict of that judge in ", db.string(),
                 "; stored: ", judge_list(judges));
    // A label is not an identity: two `kvsafe judge` runs with different specs (another model
    // file, another template) may share one, and their verdicts must not be mixed.
    KVSAFE_CHECK(found->rejudge_keys <= 1, "--judge ", requested, ": ", found->rejudge_keys,
                 " different judge specs re-judged under this label in ", db.string(),
                 " (`kvsafe judge DB --list` shows their keys); a table over them would mix judges");
    return requested;
  }
  const auto run_judges = std::count_if(judges.begin(), judges.end(), [](const auto& j) { return j.run_verdicts > 0; });
  KVSAFE_CHECK(run_judges <= 1, db.string(), " holds verdicts of several judges (", judge_list(judges),
               "); a table over both would compare judges, not quantizers. Pick one with --judge NAME: its own "
               "verdicts where it judged a run, else its `kvsafe judge` re-judgement");
  return std::nullopt;
}

}  // namespace kvsafe::report
