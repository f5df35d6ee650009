#pragma once
// The sbatch script `kvsafe submit` writes (results/<grid>.slurm/job.sbatch): one job step,
// `srun --mpi=pmix kvsafe run GRID --db DB`, over nodes x tasks_per_node ranks. Rank 0
// schedules and writes the database; the others work (docs/run.md). On GPU clusters every
// task gets one GPU (--gpus-per-task=1; the scheduler rank's GPU idles, 1 of nodes x
// gpus_per_node); on CPU-only clusters tasks get cores (--cpus-per-task).
//
// Draining and requeue: SLURM sends USR1 to the batch shell `signal_lead_s` before the time
// limit (--signal=B:USR1@lead); the script forwards it to srun, which forwards it to every
// rank (TERM is not forwarded: SLURM sends it to the ranks itself, and a second signal stops a
// run at once); `kvsafe run` stops handing out shards, lets the ones in flight finish, and exits 75.
// The script then requeues the job (`scontrol requeue`, with --requeue) while
// SLURM_RESTART_COUNT is below `requeue_limit`, and the requeued job resumes from the
// database. A drain after TERM alone (scancel) is not requeued. Any other exit status is the
// job's.
//
// Every user-supplied string is quoted (cluster/shell_quote.h): shell words in the body,
// sbatch-quoted values in the directives.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvsafe::cluster {

struct SbatchOptions {
  std::filesystem::path kvsafe_binary{};  // absolute path of the kvsafe the job runs
  std::filesystem::path grid_path{};      // absolute
  std::filesystem::path db_path{};        // absolute
  std::filesystem::path job_dir{};        // the script's folder: SLURM's output file goes there
  std::string job_name{};                 // --job-name
  std::string partition{};                // empty: the cluster's default partition
  std::optional<std::string> account{};
  std::int64_t nodes = 1;
  std::int64_t tasks_per_node = 1;           // ranks per node (rank 0 of node 0 is the scheduler)
  std::int64_t gpus_per_node = 0;            // 0: a CPU-only job; else one GPU per task
  std::int64_t cpus_per_task = 0;            // 0: SLURM's default
  std::string time{};                        // --time, a SLURM time (cluster/slurm_time.h)
  std::int64_t signal_lead_s = 120;          // --signal=B:USR1@lead
  std::int64_t requeue_limit = 3;            // requeues after a drain; 0 = never
  std::vector<std::string> extra_options{};  // more #SBATCH options, e.g. "--qos=normal"
  // Exported by the script before srun (KVSAFE_DATA, KVSAFE_MODEL_CACHE as resolved at submit
  // time), so every rank on every node reads the same data and model files.
  std::vector<std::pair<std::string, std::string>> environment{};
  std::string submitted_from{};  // the command line, for the script's header comment
};

// The script's text. Throws InputError for values that cannot be written (a newline in a
// directive value, an environment name that is not a shell name, nodes or tasks < 1).
std::string sbatch_script(const SbatchOptions& options);

// The lead of the drain signal for a time limit: long enough for the shards in flight
// (`grace_period_s`, the grid's execution.grace_period_s) plus 60 s, since SLURM checks its
// signal timer only about every 30 s and the signal can come that much later than asked; at most
// half the limit. A limit that does not parse gets
// grace_period_s + 60.
std::int64_t drain_signal_lead_s(const std::string& time, std::int64_t grace_period_s);

}  // namespace kvsafe::cluster
