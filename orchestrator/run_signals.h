#pragma once
// Signals that stop a run: SIGTERM (SLURM's time limit, scancel), SIGINT (Ctrl-C) and SIGUSR1
// (SLURM's --signal=USR1@T warning before the limit). The handler only counts them; the
// scheduler reads the count between messages: 1 = stop assigning and drain within the grace
// period, 2 or more = stop at once (finished shards are committed already; the ones in
// flight are redone on resume, never half-stored).

#include <atomic>

namespace kvsafe::orchestrator {

class RunSignals {
 public:
  // Installs the handlers (process-wide; the previous ones come back on destruction).
  RunSignals();
  ~RunSignals();
  RunSignals(const RunSignals&) = delete;
  RunSignals& operator=(const RunSignals&) = delete;

  // Signals received since construction.
  static int count();
  // The number of the last one (0 when none), for the log.
  static int last();
  // The counter itself, for the scheduler's options.
  static const std::atomic<int>* counter();
};

// Worker ranks under mpirun/srun get the launcher's signals too; rank 0 decides when to
// stop, so workers ignore SIGTERM/SIGINT/SIGUSR1 for the rest of the process.
void ignore_stop_signals();

}  // namespace kvsafe::orchestrator
