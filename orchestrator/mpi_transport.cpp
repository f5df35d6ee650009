#include "orchestrator/mpi_transport.h"

#include <mpi.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <thread>

#include "common/error.h"

namespace kvsafe::orchestrator {
namespace {

int message_count(const MPI_Status& status) {
  int count = 0;
  KVSAFE_MPI_CHECK(MPI_Get_count(&status, MPI_BYTE, &count));
  return count;
}

Message receive_matched(const MPI_Status& status) {
  const int count = message_count(status);
  std::string payload(static_cast<std::size_t>(count), '\0');
  KVSAFE_MPI_CHECK(
      MPI_Recv(payload.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
  return deserialize(static_cast<MessageTag>(status.MPI_TAG), payload);
}

void send_to(int rank, const Message& message) {
  const std::string payload = serialize(message);
  KVSAFE_CHECK(payload.size() < static_cast<std::size_t>(INT_MAX), "run protocol: a ", to_string(tag_of(message)),
               " message of ", payload.size(), " bytes is too large for one MPI message");
  KVSAFE_MPI_CHECK(MPI_Send(payload.data(), static_cast<int>(payload.size()), MPI_BYTE, rank,
                            static_cast<int>(tag_of(message)), MPI_COMM_WORLD));
}

}  // namespace

void mpi_check(int rc, const char* expression, const char* file, int line) {
  if (rc == MPI_SUCCESS) return;
  std::array<char, MPI_MAX_ERROR_STRING> text{};
  int length = 0;
  if (MPI_Error_string(rc, text.data(), &length) != MPI_SUCCESS) length = 0;
  throw Error(detail::concat(expression, " failed at ", file, ":", line, ": ", std::string(text.data(), length),
                             " (MPI error ", rc, ")"));
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  KVSAFE_MPI_CHECK(MPI_Initialized(&initialized));
  KVSAFE_ASSERT(!initialized, "MPI is initialized twice");
  KVSAFE_MPI_CHECK(MPI_Init(argc, argv));
  KVSAFE_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  KVSAFE_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  KVSAFE_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  MPI_Comm node = MPI_COMM_NULL;
  KVSAFE_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  KVSAFE_MPI_CHECK(MPI_Comm_size(node, &local_ranks_));
  const int is_worker = (size_ == 1 || rank_ != 0) ? 1 : 0;
  KVSAFE_MPI_CHECK(MPI_Allreduce(&is_worker, &local_workers_, 1, MPI_INT, MPI_SUM, node));
  KVSAFE_MPI_CHECK(MPI_Comm_free(&node));
}

MpiSession::~MpiSession() {
  MPI_Finalize();
}

std::string MpiSession::host() const {
  std::array<char, MPI_MAX_PROCESSOR_NAME> name{};
  int length = 0;
  KVSAFE_MPI_CHECK(MPI_Get_processor_name(name.data(), &length));
  return std::string(name.data(), static_cast<std::size_t>(length));
}

std::vector<std::string> MpiSession::all_hosts() const {
  std::array<char, MPI_MAX_PROCESSOR_NAME> mine{};
  const std::string name = host();
  name.copy(mine.data(), mine.size() - 1);
  std::vector<char> all(static_cast<std::size_t>(size_) * MPI_MAX_PROCESSOR_NAME);
  KVSAFE_MPI_CHECK(MPI_Allgather(mine.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME,
                                 MPI_CHAR, MPI_COMM_WORLD));
  std::vector<std::string> hosts;
  for (int r = 0; r < size_; ++r) hosts.emplace_back(all.data() + static_cast<std::size_t>(r) * MPI_MAX_PROCESSOR_NAME);
  return hosts;
}

std::string MpiSession::broadcast_text(const std::string& text_on_rank0) const {
  long long length = rank_ == 0 ? static_cast<long long>(text_on_rank0.size()) : 0;
  KVSAFE_MPI_CHECK(MPI_Bcast(&length, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
  KVSAFE_CHECK(length < INT_MAX, "the grid text is too large to broadcast (", length, " bytes)");
  std::string text = rank_ == 0 ? text_on_rank0 : std::string(static_cast<std::size_t>(length), '\0');
  KVSAFE_MPI_CHECK(MPI_Bcast(text.data(), static_cast<int>(length), MPI_CHAR, 0, MPI_COMM_WORLD));
  return text;
}

void MpiSession::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  _exit(code);  // NOTE: MPI_Abort should not return; if it does, still leave at once.
}

MpiSchedulerTransport::MpiSchedulerTransport(const MpiSession& session) : size_(session.size()) {}

std::vector<int> MpiSchedulerTransport::workers() const {
  std::vector<int> ranks;
  for (int r = 1; r < size_; ++r) ranks.push_back(r);
  return ranks;
}

void MpiSchedulerTransport::send(int worker, const Message& message) {
  send_to(worker, message);
}

std::optional<Envelope> MpiSchedulerTransport::receive(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int flag = 0;
    MPI_Status status;
    KVSAFE_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status));
    if (flag) {
      const int source = status.MPI_SOURCE;
      return Envelope{.worker = source, .message = receive_matched(status)};
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    // NOTE: polling, not a blocking MPI_Recv: rank 0 must notice signals and hung workers.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

Message MpiWorkerChannel::receive() {
  // NOTE: Open MPI's blocking MPI_Probe spins a core at 100%; an idle worker must leave the
  // cores to the ranks that compute, so it polls and sleeps instead.
  while (true) {
    int flag = 0;
    MPI_Status status;
    KVSAFE_MPI_CHECK(MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status));
    if (flag) return receive_matched(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void MpiWorkerChannel::send(const Message& message) {
  send_to(0, message);
}

}  // namespace kvsafe::orchestrator
