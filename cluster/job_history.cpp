#include "cluster/job_history.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "cluster/slurm_job.h"
#include "common/error.h"
#include "db/readonly_query.h"

namespace kvsafe::cluster {

std::vector<JobHistory> slurm_job_history(const std::filesystem::path& db) {
  const db::QueryResult has_column =
      db::run_readonly_query(db, "SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'slurm_json'");
  const bool with_json = !has_column.rows.empty() && db::query_int64(has_column.rows[0][0]) > 0;
  const db::QueryResult result = db::run_readonly_query(
      db, std::string("SELECT slurm_job_id, started_at, coalesce(ended_at, ''), status, exit_code, ranks, ") +
              (with_json ? "slurm_json" : "'{}'") + " FROM runs WHERE slurm_job_id != '' ORDER BY id");
  std::vector<JobHistory> jobs;
  std::map<std::pair<std::string, std::string>, std::size_t> index;  // (cluster, job id) -> jobs[i]
  for (const auto& row : result.rows) {
    const std::string id = db::query_text(row[0]);
    SlurmJob recorded;
    try {
      recorded = slurm_job_from_json(db::query_text(row[6]));
    } catch (const InputError&) {
      // a row written by hand; the job id column still counts
    }
    // NOTE: job ids repeat across clusters (a database merged from two): the cluster tells them apart.
    auto [at, fresh] = index.emplace(std::pair(recorded.cluster, id), jobs.size());
    if (fresh) {
      jobs.push_back({.job_id = id});
      jobs.back().started_at = db::query_text(row[1]);
    }
    JobHistory& job = jobs[at->second];
    ++job.runs;
    job.ended_at = db::query_text(row[2]);
    job.state = db::query_text(row[3]);
    job.exit_code = db::query_is_null(row[4]) ? std::nullopt : std::optional(db::query_int64(row[4]));
    job.ranks = db::query_int64(row[5]);
    job.requeues = std::max(job.requeues, recorded.restart_count);
    if (!recorded.node_list.empty()) job.node_list = recorded.node_list;
    if (recorded.nodes > 0) job.nodes = recorded.nodes;
  }
  return jobs;
}

std::string format_job_history(const std::vector<JobHistory>& jobs) {
  if (jobs.empty()) return "";
  std::string out = "\nSLURM jobs\n";
  out += fmt::format("  {:<12} {:<12} {:>5} {:>8} {:>5} {:>6} {:<16} {:<24} {:<24}\n", "job", "state", "exit",
                     "requeues", "runs", "nodes", "node list", "started (UTC)", "ended (UTC)");
  for (const JobHistory& j : jobs) {
    out += fmt::format("  {:<12} {:<12} {:>5} {:>8} {:>5} {:>6} {:<16} {:<24} {:<24}\n", j.job_id, j.state,
                       j.exit_code ? std::to_string(*j.exit_code) : "-", j.requeues, j.runs,
                       j.nodes > 0 ? std::to_string(j.nodes) : "-", j.node_list.empty() ? "-" : j.node_list,
                       j.started_at, j.ended_at.empty() ? "-" : j.ended_at);
  }
  return out;
}

}  // namespace kvsafe::cluster
