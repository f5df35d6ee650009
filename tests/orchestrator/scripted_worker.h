#pragma once
// Scripted workers for the scheduler's tests (scheduler_test.cpp): real threads that speak the
// run protocol (orchestrator/protocol.h) through real transports, answering each kAssign as
// their script says. Nothing of the scheduler is mocked: every message is serialized, queued
// and parsed as in a run.
//
//   InProcessLink link;
//   ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(), {.script = fail_twice});
//   SchedulerReport report = Scheduler(store, cells, link.scheduler_side(), options).run();
//   worker.finish();  // then worker.assigned(), worker.got_stop()
//
// InProcessLink has one worker (id 0); MultiWorkerLink has workers 1..N, as MPI ranks.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "orchestrator/inprocess_transport.h"
#include "orchestrator/protocol.h"
#include "orchestrator/transport.h"
#include "tests/db/db_test_util.h"

namespace kvsafe::orchestrator::testing {

// A one-shot latch: wait() blocks until open() was called (before or after).
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    opened_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

// The transport of an MPI run without MPI: workers 1..N, each with its own queue from the
// scheduler (MessageQueue, as InProcessLink) and one shared queue to the scheduler that
// remembers the sender. Messages are serialized both ways, as on every transport.
class MultiWorkerLink {
 public:
  explicit MultiWorkerLink(int workers) {
    for (int worker = 1; worker <= workers; ++worker) {
      to_worker_[worker] = std::make_unique<MessageQueue>();
      ends_[worker] = std::make_unique<WorkerEnd>(worker, *to_worker_[worker], to_scheduler_);
    }
    scheduler_ = std::make_unique<SchedulerEnd>(to_worker_, to_scheduler_);
  }
  SchedulerTransport& scheduler_side() { return *scheduler_; }
  WorkerChannel& worker_side(int worker) { return *ends_.at(worker); }

 private:
  // (sender, tag, payload), oldest first.
  class EnvelopeQueue {
   public:
    void push(int worker, const Message& message) {
      {
        std::lock_guard lock(mutex_);
        items_.emplace_back(worker, tag_of(message), serialize(message));
      }
      ready_.notify_one();
    }
    std::optional<Envelope> pop(std::chrono::milliseconds timeout) {
      std::unique_lock lock(mutex_);
      if (!ready_.wait_for(lock, timeout, [this] { return !items_.empty(); })) return std::nullopt;
      auto [worker, tag, payload] = std::move(items_.front());
      items_.pop_front();
      lock.unlock();
      return Envelope{.worker = worker, .message = deserialize(tag, payload)};
    }

   private:
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::tuple<int, MessageTag, std::string>> items_;
  };

  class SchedulerEnd final : public SchedulerTransport {
   public:
    SchedulerEnd(std::map<int, std::unique_ptr<MessageQueue>>& to_worker, EnvelopeQueue& from_workers)
        : to_worker_(to_worker), from_workers_(from_workers) {}
    std::vector<int> workers() const override {
      std::vector<int> ids;
      for (const auto& [worker, queue] : to_worker_) ids.push_back(worker);
      return ids;
    }
    void send(int worker, const Message& message) override { to_worker_.at(worker)->push(message); }
    std::optional<Envelope> receive(std::chrono::milliseconds timeout) override { return from_workers_.pop(timeout); }

   private:
    std::map<int, std::unique_ptr<MessageQueue>>& to_worker_;
    EnvelopeQueue& from_workers_;
  };

  class WorkerEnd final : public WorkerChannel {
   public:
    WorkerEnd(int worker, MessageQueue& from_scheduler, EnvelopeQueue& to_scheduler)
        : worker_(worker), from_scheduler_(from_scheduler), to_scheduler_(to_scheduler) {}
    Message receive() override { return *from_scheduler_.pop(std::nullopt); }
    void send(const Message& message) override { to_scheduler_.push(worker_, message); }

   private:
    int worker_;
    MessageQueue& from_scheduler_;
    EnvelopeQueue& to_scheduler_;
  };

  std::map<int, std::unique_ptr<MessageQueue>> to_worker_;
  EnvelopeQueue to_scheduler_;
  std::map<int, std::unique_ptr<WorkerEnd>> ends_;
  std::unique_ptr<SchedulerEnd> scheduler_;
};

// How a scripted worker answers one kAssign.
enum class Answer {
  kResult,   // kResult with one generation row per prompt; the worker then holds the cell's model
  kFailure,  // kFailure with `error`, as a worker that caught an exception at the shard boundary
  kSilence,  // nothing at all: a hung worker (it keeps reading messages)
};

struct Reply {
  Answer answer = Answer::kResult;         // what to send
  std::string error = "scripted failure";  // kFailure's text
  bool heartbeat_first = false;            // a kProgress before the answer (or the silence)
};

// The reply to the `attempt`th (1-based) assignment of `shard` to this worker. Runs on the
// worker's thread before it answers, so its side effects (raising a stop signal, opening a
// Gate) happen before the scheduler can see the answer.
using Script = std::function<Reply(const db::ShardKey& shard, int attempt)>;

struct ScriptedWorkerOptions {
  std::string host = "scripted";                // sent in kReady
  std::string loaded_model{};                   // model announced in kReady ("" = none)
  std::map<std::string, std::string> models{};  // cell id -> model name: held after a result
  Script script{};                              // empty: every shard succeeds at once
  Gate* ready_gate = nullptr;                   // when set: kReady waits until it opens
};

// A worker thread, started by the constructor. It sends kReady, then answers every kAssign by
// its script until kStop from the scheduler or finish() from the test.
class ScriptedWorker {
 public:
  ScriptedWorker(SchedulerTransport& scheduler_side, int worker, WorkerChannel& channel, ScriptedWorkerOptions options)
      : scheduler_side_(scheduler_side), worker_(worker), channel_(channel), options_(std::move(options)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~ScriptedWorker() { finish(); }
  ScriptedWorker(const ScriptedWorker&) = delete;
  ScriptedWorker& operator=(const ScriptedWorker&) = delete;

  // Tells the worker to leave (a marker only the test sends: the scheduler never sends a
  // worker kReady) and joins it. Call after the scheduler returned; then everything the
  // scheduler sent is queued before the marker, so got_stop() says whether it sent kStop.
  void finish() {
    if (!thread_.joinable()) return;
    if (options_.ready_gate != nullptr) options_.ready_gate->open();  // a worker still waiting to start
    scheduler_side_.send(worker_, ReadyMessage{.host = kLeaveMarker});
    thread_.join();
  }

  // After finish(): the shards the scheduler assigned to this worker, in order.
  const std::vector<db::ShardKey>& assigned() const { return assigned_; }
  // After finish(): whether the scheduler sent kStop (the worker left on it).
  bool got_stop() const { return got_stop_; }

 private:
  static constexpr const char* kLeaveMarker = "scripted-worker: leave";

  void loop() {
    try {
      if (options_.ready_gate != nullptr) options_.ready_gate->wait();
      channel_.send(ReadyMessage{.host = options_.host, .loaded_model = options_.loaded_model});
      std::string held = options_.loaded_model;
      while (true) {
        const Message message = channel_.receive();
        if (std::holds_alternative<StopMessage>(message)) {
          got_stop_ = true;
          return;
        }
        if (std::holds_alternative<ReadyMessage>(message)) return;  // finish()
        const db::ShardKey shard = std::get<AssignMessage>(message).shard;
        assigned_.push_back(shard);
        const int attempt = ++attempts_[shard];
        const Reply reply = options_.script ? options_.script(shard, attempt) : Reply{};
        if (reply.heartbeat_first) {
          channel_.send(ProgressMessage{.shard = shard, .prompts_done = 0, .tokens_generated = 0});
        }
        if (reply.answer == Answer::kResult) {
          ResultMessage result{.result = db::testing::make_result(shard)};
          const auto model = options_.models.find(shard.cell_id);
          if (model != options_.models.end()) held = model->second;
          result.loaded_model = held;
          channel_.send(result);
        } else if (reply.answer == Answer::kFailure) {
          channel_.send(FailureMessage{.shard = shard, .error = reply.error, .loaded_model = held});
        }
      }
    } catch (const std::exception& error) {
      ADD_FAILURE() << "scripted worker " << worker_ << ": " << error.what();
    }
  }

  SchedulerTransport& scheduler_side_;  // for finish()'s marker only
  const int worker_;
  WorkerChannel& channel_;
  const ScriptedWorkerOptions options_;
  std::thread thread_;
  // Written by the worker's thread, read by the test after join().
  std::vector<db::ShardKey> assigned_;
  std::map<db::ShardKey, int> attempts_;
  bool got_stop_ = false;
};

}  // namespace kvsafe::orchestrator::testing
