#pragma once
// SLURM time limits (sbatch --time): "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S", as
// seconds and back. `kvsafe submit` derives the drain signal's lead from the limit, and
// `kvsafe plan --slurm` compares the limit with the makespan.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvsafe::cluster {

// Seconds of a SLURM time; nullopt when it is not one (also "infinite" / "UNLIMITED").
std::optional<std::int64_t> slurm_time_seconds(std::string_view time);

// "D-HH:MM:SS" (or "HH:MM:SS" under a day), whole seconds.
std::string format_slurm_time(std::int64_t seconds);

}  // namespace kvsafe::cluster
