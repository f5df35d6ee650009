#include "report/verdict_sql.h"

#include <map>

#include "db/readonly_query.h"

namespace kvsafe::report {
namespace {

bool has_judgements_table(const std::filesystem::path& db) {
  const db::QueryResult found =
      db::run_readonly_query(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'judgements'");
  return !found.rows.empty() && db::query_int64(found.rows[0][0]) != 0;
}

}  // namespace

std::string sql_quoted(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string run_judge_label_sql() {
  // NOTE: json_valid first: json_extract raises an error on malformed JSON, and one bad row
  // must not make every report fail.
  return "(CASE WHEN json_valid(g.judge_json) THEN json_extract(g.judge_json, '$.judge') END)";
}

std::string verdict_sql(const std::filesystem::path& db, const std::optional<std::string>& judge) {
  if (!judge) return "g.refused";
  const std::string run_is_this_judge = *judge == kUnlabelledJudge ? run_judge_label_sql() + " IS NULL"
                                                                   : run_judge_label_sql() + " = " + sql_quoted(*judge);
  // NOTE: choose_judge refuses a label that names two judge specs, so the latest row of the
  // label is this one judge's (a generation is judged once per spec).
  const std::string rejudged =
      has_judgements_table(db)
          ? "(SELECT j.refused FROM judgements j WHERE j.generation_id = g.id AND j.judge_label = " +
                sql_quoted(*judge) + " ORDER BY j.id DESC LIMIT 1)"
          : std::string("NULL");
  return "(CASE WHEN " + run_is_this_judge + " THEN g.refused ELSE " + rejudged + " END)";
}

std::vector<JudgeVerdictCount> judges_with_verdicts(const std::filesystem::path& db) {
  std::map<std::string, JudgeVerdictCount> by_label;
  const db::QueryResult run =
      db::run_readonly_query(db, "SELECT coalesce(" + run_judge_label_sql() + ", " + sql_quoted(kUnlabelledJudge) +
                                     "), count(*) FROM generations g WHERE g.refused IS NOT NULL GROUP BY 1");
  for (const auto& row : run.rows) {
    JudgeVerdictCount& judge = by_label[db::query_text(row[0])];
    judge.label = db::query_text(row[0]);
    judge.run_verdicts = db::query_int64(row[1]);
  }
  if (has_judgements_table(db)) {
    const db::QueryResult rejudged = db::run_readonly_query(
        db, "SELECT judge_label, count(*), count(DISTINCT judge_key) FROM judgements GROUP BY 1");
    for (const auto& row : rejudged.rows) {
      JudgeVerdictCount& judge = by_label[db::query_text(row[0])];
      judge.label = db::query_text(row[0]);
      judge.rejudged_verdicts = db::query_int64(row[1]);
      judge.rejudge_keys = db::query_int64(row[2]);
    }
  }
  std::vector<JudgeVerdictCount> out;
  for (auto& entry : by_label) out.push_back(std::move(entry.second));
  return out;
}

}  // namespace kvsafe::report
