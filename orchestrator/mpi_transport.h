#pragma once
// MPI transports: rank 0 schedules, ranks >= 1 work (protocol.h over MPI_COMM_WORLD).
// Every MPI call goes through KVSAFE_MPI_CHECK, which turns an error code into an Error
// naming the call, the MPI error text and file:line (MPI_ERRORS_RETURN is set on the world
// communicator by MpiSession, so errors come back instead of aborting).
//
// A message is one MPI_BYTE buffer holding the serialized payload, its MPI tag the
// MessageTag. Rank 0 polls (MPI_Iprobe) so it can watch signals and timeouts between
// messages; workers block (MPI_Probe).

#include <string>
#include <vector>

#include "orchestrator/transport.h"

namespace kvsafe::orchestrator {

// Throws Error("<expr> failed at file:line: <MPI error string>") when rc != MPI_SUCCESS.
void mpi_check(int rc, const char* expression, const char* file, int line);
#define KVSAFE_MPI_CHECK(call) ::kvsafe::orchestrator::mpi_check((call), #call, __FILE__, __LINE__)

// MPI_Init on construction, MPI_Finalize on destruction (unless aborted). One per process.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Ranks on this rank's node (MPI_COMM_TYPE_SHARED), and how many of them are workers
  // (every rank but rank 0 works when size > 1).
  int local_ranks() const { return local_ranks_; }
  int local_workers() const { return local_workers_; }
  std::string host() const;
  // Host name of every rank, gathered to every rank (collective).
  std::vector<std::string> all_hosts() const;
  // Rank 0's text on every rank (collective): the grid, so all ranks expand the same cells.
  std::string broadcast_text(const std::string& text_on_rank0) const;
  // MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job. Does not return.
  [[noreturn]] void abort(int code);

 private:
  int rank_ = 0;
  int size_ = 1;
  int local_ranks_ = 1;
  int local_workers_ = 1;
};

class MpiSchedulerTransport final : public SchedulerTransport {
 public:
  explicit MpiSchedulerTransport(const MpiSession& session);
  std::vector<int> workers() const override;
  void send(int worker, const Message& message) override;
  std::optional<Envelope> receive(std::chrono::milliseconds timeout) override;

 private:
  int size_;
};

class MpiWorkerChannel final : public WorkerChannel {
 public:
  Message receive() override;
  void send(const Message& message) override;
};

}  // namespace kvsafe::orchestrator
