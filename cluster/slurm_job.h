#pragma once
// The SLURM job a process runs in, from the SLURM_* variables slurmstepd sets (read once, in
// common/environment.h), and its JSON form: `kvsafe run` stores it per run (runs.slurm_json)
// and `kvsafe status` lists the jobs that ran on a database.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace kvsafe::cluster {

struct SlurmJob {
  std::string job_id{};            // SLURM_JOB_ID; empty outside SLURM
  std::string job_name{};          // SLURM_JOB_NAME
  std::int64_t restart_count = 0;  // SLURM_RESTART_COUNT: times the job was requeued
  std::string node_list{};         // SLURM_JOB_NODELIST, compressed ("node[01-04]")
  std::int64_t nodes = 0;          // SLURM_JOB_NUM_NODES
  std::int64_t tasks = 0;          // SLURM_NTASKS (of the step when set, else the job's)
  std::int64_t procid = -1;        // SLURM_PROCID: this task's rank in the step; -1 = the batch shell
  std::string partition{};         // SLURM_JOB_PARTITION
  std::string cluster{};           // SLURM_CLUSTER_NAME

  bool in_slurm() const { return !job_id.empty(); }
  bool operator==(const SlurmJob&) const = default;
};

// From SLURM_* variables (name -> value). Numbers that do not parse are left at their default.
SlurmJob slurm_job_from(const std::map<std::string, std::string>& variables);

// Compact JSON with every field ({} outside SLURM), and back; slurm_job_from_json reads {} and
// unknown keys leniently (rows of older kvsafe versions) and throws InputError on broken JSON.
std::string to_json(const SlurmJob& job);
SlurmJob slurm_job_from_json(std::string_view json);

}  // namespace kvsafe::cluster
