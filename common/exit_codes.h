#pragma once
// Exit codes of the kvsafe command, documented in README.md so batch scripts can rely on them.
// The one home of these numbers: the CLI returns them, `kvsafe run`'s library side
// (runner/run_grid.h) defaults to them, and the integration tests expect them.

namespace kvsafe {

inline constexpr int kExitOk = 0;       // did what was asked
inline constexpr int kExitFailure = 1;  // an error, explained on stderr
inline constexpr int kExitUsage = 64;   // bad command line (BSD EX_USAGE)
// `kvsafe run` stopped by SIGTERM/SIGINT/SIGUSR1 (SLURM time limit, preemption, Ctrl-C):
// finished shards are committed; requeue the job and run again to resume (BSD EX_TEMPFAIL).
inline constexpr int kExitInterrupted = 75;

}  // namespace kvsafe
