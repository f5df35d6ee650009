#include "orchestrator/inprocess_transport.h"

namespace kvsafe::orchestrator {

void MessageQueue::push(const Message& message) {
  std::pair<MessageTag, std::string> item{tag_of(message), serialize(message)};
  {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(item));
  }
  ready_.notify_one();
}

std::optional<Message> MessageQueue::pop(std::optional<std::chrono::milliseconds> timeout) {
  std::unique_lock lock(mutex_);
  if (timeout) {
    if (!ready_.wait_for(lock, *timeout, [this] { return !items_.empty(); })) return std::nullopt;
  } else {
    ready_.wait(lock, [this] { return !items_.empty(); });
  }
  auto [tag, payload] = std::move(items_.front());
  items_.pop_front();
  lock.unlock();
  return deserialize(tag, payload);
}

namespace {

class InProcessScheduler final : public SchedulerTransport {
 public:
  InProcessScheduler(MessageQueue& to_worker, MessageQueue& from_worker)
      : to_worker_(to_worker), from_worker_(from_worker) {}
  std::vector<int> workers() const override { return {0}; }
  void send(int /*worker*/, const Message& message) override { to_worker_.push(message); }
  std::optional<Envelope> receive(std::chrono::milliseconds timeout) override {
    auto message = from_worker_.pop(timeout);
    if (!message) return std::nullopt;
    return Envelope{.worker = 0, .message = std::move(*message)};
  }

 private:
  MessageQueue& to_worker_;
  MessageQueue& from_worker_;
};

class InProcessWorker final : public WorkerChannel {
 public:
  InProcessWorker(MessageQueue& to_scheduler, MessageQueue& from_scheduler)
      : to_scheduler_(to_scheduler), from_scheduler_(from_scheduler) {}
  Message receive() override { return *from_scheduler_.pop(std::nullopt); }
  void send(const Message& message) override { to_scheduler_.push(message); }

 private:
  MessageQueue& to_scheduler_;
  MessageQueue& from_scheduler_;
};

}  // namespace

struct InProcessLink::Ends {
  InProcessScheduler scheduler;
  InProcessWorker worker;
};

InProcessLink::InProcessLink()
    : ends_(std::make_unique<Ends>(Ends{.scheduler = InProcessScheduler(to_worker_, to_scheduler_),
                                        .worker = InProcessWorker(to_scheduler_, to_worker_)})) {}
InProcessLink::~InProcessLink() = default;
SchedulerTransport& InProcessLink::scheduler_side() {
  return ends_->scheduler;
}
WorkerChannel& InProcessLink::worker_side() {
  return ends_->worker;
}

}  // namespace kvsafe::orchestrator
