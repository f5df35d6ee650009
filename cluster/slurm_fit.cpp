#include "cluster/slurm_fit.h"

#include <algorithm>
#include <cmath>

namespace kvsafe::cluster {

SlurmFit slurm_fit(double makespan_s, std::int64_t nodes, std::int64_t time_limit_s, std::int64_t drain_lead_s) {
  SlurmFit fit;
  fit.node_hours = makespan_s * static_cast<double>(std::max<std::int64_t>(nodes, 1)) / 3600.0;
  // NOTE: at least a minute of work per job, so a lead longer than the limit still terminates.
  fit.useful_s_per_job = std::max(60.0, static_cast<double>(time_limit_s - drain_lead_s));
  fit.jobs = makespan_s <= 0 ? 0 : static_cast<std::int64_t>(std::ceil(makespan_s / fit.useful_s_per_job));
  fit.requeues = std::max<std::int64_t>(0, fit.jobs - 1);
  fit.fits = fit.jobs <= 1;
  return fit;
}

}  // namespace kvsafe::cluster
