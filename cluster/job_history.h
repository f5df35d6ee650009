#pragma once
// The SLURM jobs that ran on a results database, from its runs table: each `kvsafe run` under
// SLURM records its job (runs.slurm_job_id and runs.slurm_json, cluster/slurm_job.h), so a
// job that drained and was requeued shows as one job with several runs. `kvsafe status` prints
// them.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kvsafe::cluster {

struct JobHistory {
  std::string job_id{};
  std::int64_t runs = 0;                    // kvsafe runs in the job: 1 + requeues that reached a run
  std::int64_t requeues = 0;                // the highest SLURM_RESTART_COUNT seen
  std::string state{};                      // the last run's status: done, drained, failed, running, ...
  std::optional<std::int64_t> exit_code{};  // the last run's exit code
  std::string node_list{};                  // of the last run
  std::int64_t nodes = 0;
  std::int64_t ranks = 0;    // MPI ranks of the last run
  std::string started_at{};  // the first run's start (UTC)
  std::string ended_at{};    // the last run's end; empty while it runs
};

// Jobs in order of their first run; one job per (cluster, job id). A database from before schema 8 lists its jobs
// without node counts and requeues. Throws DbError for a missing or unreadable database.
std::vector<JobHistory> slurm_job_history(const std::filesystem::path& db);

// A table for `kvsafe status`; "" when no run ran under SLURM.
std::string format_job_history(const std::vector<JobHistory>& jobs);

}  // namespace kvsafe::cluster
