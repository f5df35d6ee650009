#pragma once
// Transports carry protocol messages (protocol.h) between the scheduler and its workers.
// The scheduler (scheduler.h) and the worker loop (worker/worker_loop.h) see only these two
// interfaces, so one rank (an in-process worker on a thread, inprocess_transport.h) and
// many MPI ranks (mpi_transport.h) run the same scheduling code.
//
// Both sides serialize every message, in process too: what reaches the database never
// depends on how many ranks there are.

#include <chrono>
#include <optional>
#include <vector>

#include "orchestrator/protocol.h"

namespace kvsafe::orchestrator {

struct Envelope {
  int worker = 0;     // who sent it: an MPI rank, or 0 for the in-process worker
  Message message{};  // what was sent
};

// The scheduler's side. Not thread-safe: the scheduler's thread owns it.
class SchedulerTransport {
 public:
  virtual ~SchedulerTransport() = default;
  // The workers' ids (MPI ranks 1..N-1, or {0} in process).
  virtual std::vector<int> workers() const = 0;
  // Sends one message to a worker. Throws Error when the transport fails (an MPI error).
  virtual void send(int worker, const Message& message) = 0;
  // The next message from any worker, waiting at most `timeout`; nullopt when none came.
  virtual std::optional<Envelope> receive(std::chrono::milliseconds timeout) = 0;
};

// A worker's side: one scheduler at the other end.
class WorkerChannel {
 public:
  virtual ~WorkerChannel() = default;
  // Blocks until the scheduler sends a message (kAssign or kStop).
  virtual Message receive() = 0;
  // Sends one message to the scheduler. Throws Error when the transport fails.
  virtual void send(const Message& message) = 0;
};

}  // namespace kvsafe::orchestrator
