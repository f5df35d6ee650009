#pragma once
// The transport of a one-rank run: one worker loop on the calling thread, the scheduler on a
// second thread of the same process (runner/run_grid.cpp), two queues of serialized messages
// between them.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "orchestrator/transport.h"

namespace kvsafe::orchestrator {

// One direction: a queue of (tag, payload) that a reader may wait on.
class MessageQueue {
 public:
  void push(const Message& message);
  // Waits up to `timeout` (forever when nullopt); nullopt when nothing came.
  std::optional<Message> pop(std::optional<std::chrono::milliseconds> timeout);

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::pair<MessageTag, std::string>> items_;
};

// Owns both queues; hands out the two ends. Outlives both ends' users.
class InProcessLink {
 public:
  InProcessLink();
  ~InProcessLink();
  SchedulerTransport& scheduler_side();
  WorkerChannel& worker_side();

 private:
  MessageQueue to_worker_;
  MessageQueue to_scheduler_;
  struct Ends;
  std::unique_ptr<Ends> ends_;
};

}  // namespace kvsafe::orchestrator
