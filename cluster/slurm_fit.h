#pragma once
// Does a grid fit in one SLURM job? `kvsafe plan --slurm` compares the cost model's makespan
// (remaining work on nodes x gpus_per_node GPUs) with the time limit, less the drain lead each
// job spends finishing shards before its limit, and says how many requeues the rest would take.

#include <cstdint>

namespace kvsafe::cluster {

struct SlurmFit {
  double node_hours = 0;        // makespan x nodes
  double useful_s_per_job = 0;  // time limit less the drain lead
  std::int64_t jobs = 0;        // job runs the makespan needs (1 = it fits); 0 with nothing to run
  std::int64_t requeues = 0;    // jobs - 1
  bool fits = false;            // one job is enough
};

// makespan_s >= 0; time_limit_s > 0; drain_lead_s >= 0.
SlurmFit slurm_fit(double makespan_s, std::int64_t nodes, std::int64_t time_limit_s, std::int64_t drain_lead_s);

}  // namespace kvsafe::cluster
