// The scheduler (orchestrator/scheduler.h) against scripted workers: real threads speaking the
// run protocol through the in-process transport (tests/orchestrator/scripted_worker.h), a real
// results database in a temporary directory. Retries, hung workers, drains on stop signals and
// model affinity, each in milliseconds.
//
// NOTE: no test depends on how fast anything runs. Where the clock is not under test the poll
// is longer than any test, so the scheduler acts only on messages, in the order the scripts
// send them; scripts raise stop signals before they answer. Only the hung-worker tests use a
// short worker_timeout, and they assert what happens after it, never when.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "db/store.h"
#include "orchestrator/cell.h"
#include "orchestrator/inprocess_transport.h"
#include "orchestrator/scheduler.h"
#include "tests/db/db_test_util.h"
#include "tests/orchestrator/scripted_worker.h"

namespace kvsafe::orchestrator {
namespace {

using namespace std::chrono_literals;
using testing::Answer;
using testing::Gate;
using testing::MultiWorkerLink;
using testing::Reply;
using testing::ScriptedWorker;

constexpr std::int64_t kShardSize = 4;

// A full-precision (baseline) cell of `model` with `params` parameters.
Cell make_cell(const std::string& id, const std::string& model, double params, std::int64_t n_prompts) {
  Cell cell;
  cell.id = id;
  cell.model.name = model;
  cell.model.params = params;
  cell.kv_label = "none";
  cell.n_prompts = n_prompts;
  return cell;
}

db::ShardKey shard(const std::string& cell, std::int64_t begin) {
  return {.cell_id = cell, .begin = begin, .end = begin + kShardSize};
}

class SchedulerTest : public ::testing::Test {
 protected:
  // Registers the cells; every shard of kShardSize prompts is pending.
  void register_cells(std::vector<Cell> cells) {
    cells_ = std::move(cells);
    std::vector<db::CellRecord> records;
    for (const Cell& cell : cells_) {
      db::CellRecord record = db::testing::make_cell(cell.id, cell.n_prompts, cell.kv_label);
      record.model = cell.model.name;
      records.push_back(record);
    }
    const std::int64_t experiment = store_->register_experiment(db::testing::make_experiment("scheduler_test"));
    store_->register_cells(experiment, records, kShardSize);
  }

  // Cell id -> model: what a scripted worker holds after a result.
  std::map<std::string, std::string> models() const {
    std::map<std::string, std::string> out;
    for (const Cell& cell : cells_) out[cell.id] = cell.model.name;
    return out;
  }

  // Options under which only messages move the run: a poll longer than any test, no timeout.
  SchedulerOptions options() { return {.max_attempts = 3, .signals = &signals_, .poll = 1min}; }

  SchedulerReport run(SchedulerTransport& transport, const SchedulerOptions& options) {
    Scheduler scheduler(*store_, cells_, transport, options);
    return scheduler.run();
  }

  // COUNT(*) through a second, read-only connection: what is committed.
  std::int64_t rows(const std::string& table_and_where) { return db::testing::count_rows(path_, table_and_where); }

  db::testing::TempDir dir_;
  std::filesystem::path path_ = dir_ / "run.db";
  std::unique_ptr<db::Store> store_ = db::Store::open(path_, {.holder_description = "scheduler_test"});
  std::vector<Cell> cells_;
  std::atomic<int> signals_{0};  // the stop-signal count the scheduler watches
};

// ---- retries ----

TEST_F(SchedulerTest, ShardThatFailsTwiceIsRetriedAndTheRunCompletes) {
  register_cells({make_cell("c", "m-1b", 1e9, 8)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(),
                        {.models = models(), .script = [](const db::ShardKey& key, int attempt) {
                           if (key.begin == 0 && attempt <= 2)
                             return Reply{.answer = Answer::kFailure, .error = "boom"};
                           return Reply{};
                         }});
  const SchedulerReport report = run(link.scheduler_side(), options());
  worker.finish();

  EXPECT_EQ(report.shards_total, 2);
  EXPECT_EQ(report.shards_committed, 2);
  EXPECT_EQ(report.failed_attempts, 2);
  EXPECT_TRUE(report.failed_cells.empty());
  EXPECT_EQ(report.shards_left, 0);
  EXPECT_EQ(report.prompts, 8);
  EXPECT_EQ(report.tokens, 8 * db::testing::make_generation(0).output_tokens);
  EXPECT_FALSE(report.stopped_by_signal);
  EXPECT_TRUE(report.abandoned_workers.empty());
  // Alone, the worker may retry its own failure (rule 4); the failed shard stays first in
  // grid order, so it is retried before the next one.
  EXPECT_EQ(worker.assigned(), (std::vector<db::ShardKey>{shard("c", 0), shard("c", 0), shard("c", 0), shard("c", 4)}));
  EXPECT_TRUE(worker.got_stop());
  EXPECT_EQ(rows("shards WHERE cell_id = 'c' AND begin = 0 AND status = 'done' AND attempts = 3"), 1);
  EXPECT_EQ(rows("shards WHERE cell_id = 'c' AND begin = 4 AND status = 'done' AND attempts = 1"), 1);
  EXPECT_EQ(rows("cells WHERE id = 'c' AND status = 'done'"), 1);
  EXPECT_EQ(rows("generations WHERE cell_id = 'c'"), 8);
}

TEST_F(SchedulerTest, ShardThatFailsEveryAttemptFailsItsCellAndDropsItsOtherShards) {
  register_cells({make_cell("bad", "m-1b", 1e9, 8), make_cell("good", "m-1b", 1e9, 4)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(),
                        {.models = models(), .script = [](const db::ShardKey& key, int /*attempt*/) {
                           if (key.cell_id == "bad") return Reply{.answer = Answer::kFailure, .error = "boom"};
                           return Reply{};
                         }});
  const SchedulerReport report = run(link.scheduler_side(), options());
  worker.finish();

  EXPECT_EQ(report.shards_total, 3);
  EXPECT_EQ(report.failed_attempts, 3);  // max_attempts of the first shard
  ASSERT_EQ(report.failed_cells.size(), 1U);
  EXPECT_NE(report.failed_cells[0].find("boom"), std::string::npos) << report.failed_cells[0];
  EXPECT_EQ(report.shards_committed, 1);
  EXPECT_EQ(report.shards_left, 1);  // bad's second shard, dropped with its cell
  EXPECT_EQ(worker.assigned(),
            (std::vector<db::ShardKey>{shard("bad", 0), shard("bad", 0), shard("bad", 0), shard("good", 0)}));
  EXPECT_TRUE(worker.got_stop());
  EXPECT_EQ(rows("shards WHERE cell_id = 'bad' AND begin = 0 AND status = 'failed' AND attempts = 3"), 1);
  EXPECT_EQ(rows("shards WHERE cell_id = 'bad' AND begin = 4 AND status = 'pending' AND attempts = 0"), 1);
  EXPECT_EQ(rows("cells WHERE id = 'bad' AND status = 'failed'"), 1);
  EXPECT_EQ(rows("cells WHERE id = 'good' AND status = 'done'"), 1);
}

// ---- hung workers (worker_timeout) ----

TEST_F(SchedulerTest, SilentWorkerIsCountedHungAndItsShardGoesBackToPending) {
  register_cells({make_cell("c", "m-1b", 1e9, 8)});
  InProcessLink link;
  ScriptedWorker worker(
      link.scheduler_side(), 0, link.worker_side(),
      {.models = models(), .script = [](const db::ShardKey&, int) { return Reply{.answer = Answer::kSilence}; }});
  SchedulerOptions o = options();
  o.worker_timeout = 10ms;
  o.poll = 1ms;  // timeouts are checked between polls
  const SchedulerReport report = run(link.scheduler_side(), o);
  worker.finish();

  EXPECT_EQ(report.abandoned_workers, std::vector<int>{0});
  EXPECT_EQ(report.failed_attempts, 1);
  EXPECT_EQ(report.shards_committed, 0);
  EXPECT_EQ(report.shards_left, 2);  // no worker left for either shard
  EXPECT_TRUE(report.failed_cells.empty());
  EXPECT_EQ(worker.assigned(), std::vector<db::ShardKey>{shard("c", 0)});
  EXPECT_FALSE(worker.got_stop()) << "a hung worker cannot hear kStop; the caller kills it";
  EXPECT_EQ(rows("shards WHERE begin = 0 AND status = 'pending' AND attempts = 1 AND error LIKE '%timed out%'"), 1);
  EXPECT_EQ(rows("shards WHERE begin = 4 AND status = 'pending' AND attempts = 0"), 1);
}

TEST_F(SchedulerTest, HungWorkersShardIsRetriedOnAnotherWorker) {
  register_cells({make_cell("c", "m-1b", 1e9, 8)});
  MultiWorkerLink link(2);
  // Worker 2 starts only once worker 1 holds the first shard, so worker 1 surely gets one.
  Gate worker_1_busy;
  ScriptedWorker hung(link.scheduler_side(), 1, link.worker_side(1),
                      {.host = "one", .models = models(), .script = [&](const db::ShardKey&, int) {
                         worker_1_busy.open();
                         return Reply{.answer = Answer::kSilence};
                       }});
  ScriptedWorker healthy(link.scheduler_side(), 2, link.worker_side(2),
                         {.host = "two", .models = models(), .ready_gate = &worker_1_busy});
  SchedulerOptions o = options();
  // NOTE: worker 2 answers at once; this only has to exceed a thread wake-up on a busy machine.
  o.worker_timeout = 100ms;
  o.poll = 1ms;
  const SchedulerReport report = run(link.scheduler_side(), o);
  hung.finish();
  healthy.finish();

  EXPECT_EQ(report.abandoned_workers, std::vector<int>{1});
  EXPECT_EQ(report.failed_attempts, 1);
  EXPECT_EQ(report.shards_committed, 2);
  EXPECT_EQ(report.shards_left, 0);
  EXPECT_TRUE(report.failed_cells.empty());
  EXPECT_EQ(hung.assigned(), std::vector<db::ShardKey>{shard("c", 0)});
  EXPECT_FALSE(hung.got_stop());
  // Worker 2 ran both; in which order depends on whether it was ready before the timeout.
  std::vector<db::ShardKey> ran = healthy.assigned();
  std::sort(ran.begin(), ran.end());
  EXPECT_EQ(ran, (std::vector<db::ShardKey>{shard("c", 0), shard("c", 4)}));
  EXPECT_TRUE(healthy.got_stop());
  EXPECT_EQ(rows("shards WHERE begin = 0 AND status = 'done' AND attempts = 2 AND worker = 'rank 2@two'"), 1);
  EXPECT_EQ(rows("cells WHERE id = 'c' AND status = 'done'"), 1);
}

// ---- drains (stop signals; orchestrator/run_signals.h) ----

TEST_F(SchedulerTest, FirstSignalDrainsTheShardInFlightAndAssignsNoMore) {
  register_cells({make_cell("c", "m-1b", 1e9, 12)});
  InProcessLink link;
  // The signal comes while the worker holds the shard; its heartbeat makes the scheduler
  // see the signal before the result.
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(),
                        {.models = models(), .script = [this](const db::ShardKey&, int) {
                           signals_ = 1;
                           return Reply{.heartbeat_first = true};
                         }});
  const SchedulerReport report = run(link.scheduler_side(), options());
  worker.finish();

  EXPECT_TRUE(report.stopped_by_signal);
  EXPECT_FALSE(report.stopped_at_once);
  EXPECT_EQ(report.shards_committed, 1);
  EXPECT_EQ(report.shards_left, 2);
  EXPECT_TRUE(report.abandoned_workers.empty());
  EXPECT_EQ(worker.assigned(), std::vector<db::ShardKey>{shard("c", 0)});
  EXPECT_TRUE(worker.got_stop());
  EXPECT_EQ(rows("shards WHERE begin = 0 AND status = 'done'"), 1);
  EXPECT_EQ(rows("shards WHERE status = 'pending' AND attempts = 0"), 2);
}

TEST_F(SchedulerTest, DrainEndsAfterTheGracePeriodAndAbandonsTheShardInFlight) {
  register_cells({make_cell("c", "m-1b", 1e9, 12)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(),
                        {.models = models(), .script = [this](const db::ShardKey&, int) {
                           signals_ = 1;
                           return Reply{.answer = Answer::kSilence, .heartbeat_first = true};
                         }});
  SchedulerOptions o = options();
  o.grace_period = 5ms;
  o.poll = 1ms;
  const SchedulerReport report = run(link.scheduler_side(), o);
  worker.finish();

  EXPECT_TRUE(report.stopped_by_signal);
  EXPECT_FALSE(report.stopped_at_once);
  EXPECT_EQ(report.shards_committed, 0);
  EXPECT_EQ(report.shards_left, 3);  // two never assigned, one in flight
  EXPECT_EQ(report.failed_attempts, 0);
  EXPECT_EQ(report.abandoned_workers, std::vector<int>{0});
  EXPECT_EQ(worker.assigned(), std::vector<db::ShardKey>{shard("c", 0)});
  EXPECT_FALSE(worker.got_stop()) << "a worker still inside a shard is killed, not stopped";
  // Left running, never half-stored: the next run requeues and redoes it.
  EXPECT_EQ(rows("shards WHERE begin = 0 AND status = 'running'"), 1);
  EXPECT_EQ(rows("generations"), 0);
  EXPECT_EQ(store_->requeue_in_flight(), 1);
}

TEST_F(SchedulerTest, SecondSignalStopsAtOnceWithoutWaitingForTheShardInFlight) {
  register_cells({make_cell("c", "m-1b", 1e9, 12)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(),
                        {.models = models(), .script = [this](const db::ShardKey&, int) {
                           signals_ = 2;
                           return Reply{.answer = Answer::kSilence, .heartbeat_first = true};
                         }});
  const SchedulerReport report = run(link.scheduler_side(), options());  // grace: 60 s, unused
  worker.finish();

  EXPECT_TRUE(report.stopped_at_once);
  EXPECT_EQ(report.shards_committed, 0);
  EXPECT_EQ(report.shards_left, 3);
  EXPECT_EQ(report.abandoned_workers, std::vector<int>{0});
  EXPECT_FALSE(worker.got_stop());
  EXPECT_EQ(rows("shards WHERE begin = 0 AND status = 'running'"), 1);
}

TEST_F(SchedulerTest, SecondSignalStillStopsAWorkerThatIsIdle) {
  // Both signals come while the worker runs its shard, and the result arrives before the
  // scheduler looks: it stops at once with the worker idle. The worker must still get kStop
  // (scheduler.h: "Sends kStop to the workers that can still hear it"): the caller neither
  // kills nor aborts when no worker is abandoned, and an in-process worker would wait forever.
  register_cells({make_cell("c", "m-1b", 1e9, 12)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(),
                        {.models = models(), .script = [this](const db::ShardKey&, int) {
                           signals_ = 2;
                           return Reply{};
                         }});
  const SchedulerReport report = run(link.scheduler_side(), options());
  worker.finish();

  EXPECT_TRUE(report.stopped_at_once);
  EXPECT_EQ(report.shards_committed, 1);
  EXPECT_EQ(report.shards_left, 2);
  EXPECT_TRUE(report.abandoned_workers.empty());
  EXPECT_EQ(worker.assigned(), std::vector<db::ShardKey>{shard("c", 0)});
  EXPECT_TRUE(worker.got_stop());
}

// ---- model affinity (schedule_policy.h rules 1 and 2) ----

TEST_F(SchedulerTest, WorkerHoldingAModelGetsItsShardsFirst) {
  // On work alone (rule 2) the 7B model would go first; the worker already holds the small one.
  register_cells({make_cell("big", "big-7b", 7e9, 8), make_cell("small", "small-135m", 1.35e8, 8)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(),
                        {.loaded_model = "small-135m", .models = models()});
  const SchedulerReport report = run(link.scheduler_side(), options());
  worker.finish();

  EXPECT_EQ(report.shards_committed, 4);
  EXPECT_EQ(worker.assigned(),
            (std::vector<db::ShardKey>{shard("small", 0), shard("small", 4), shard("big", 0), shard("big", 4)}));
}

TEST_F(SchedulerTest, WorkerHoldingNoModelStartsWithTheMostWork) {
  // The same grid as above without a loaded model: longest-processing-time order.
  register_cells({make_cell("big", "big-7b", 7e9, 8), make_cell("small", "small-135m", 1.35e8, 8)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(), {.models = models()});
  const SchedulerReport report = run(link.scheduler_side(), options());
  worker.finish();

  EXPECT_EQ(report.shards_committed, 4);
  EXPECT_EQ(worker.assigned(),
            (std::vector<db::ShardKey>{shard("big", 0), shard("big", 4), shard("small", 0), shard("small", 4)}));
}

TEST_F(SchedulerTest, ModelNamedInAResultKeepsTheWorkerOnIt) {
  // b: 8 prompts x 2e9 = 16e9 of work, a: 12 prompts x 1e9 = 12e9, so b goes first. Once b's
  // first shard is out, a has more work left (12e9 > 8e9), but the result says the worker
  // now holds b, and affinity keeps it there.
  register_cells({make_cell("a", "a-1b", 1e9, 12), make_cell("b", "b-2b", 2e9, 8)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(), {.models = models()});
  const SchedulerReport report = run(link.scheduler_side(), options());
  worker.finish();

  EXPECT_EQ(report.shards_committed, 5);
  EXPECT_EQ(worker.assigned(),
            (std::vector<db::ShardKey>{shard("b", 0), shard("b", 4), shard("a", 0), shard("a", 4), shard("a", 8)}));
}

// ---- cells derived from stored results (SchedulerOptions::derive_cells) ----

namespace {

// derive_cells for the tests: once cell "a" is done, it registers cell "d" (4 prompts) and
// returns it; `fail_calls` of the first calls throw instead.
struct Deriver {
  db::Store* store = nullptr;
  int fail_calls = 0;
  int calls = 0;
  std::vector<std::string> completed{};

  std::vector<Cell> operator()(const std::string& completed_cell) {
    ++calls;
    completed.push_back(completed_cell);
    if (calls <= fail_calls) throw Error("database is locked");
    if (store->cell_status("a") != db::ShardStatus::kDone) return {};
    Cell d = make_cell("d", "m-1b", 1e9, 4);
    d.derived_from = {"a"};
    const std::int64_t experiment = store->register_experiment(db::testing::make_experiment("scheduler_test"));
    db::CellRecord record = db::testing::make_cell("d", 4, "none");
    record.model = "m-1b";
    store->register_cells(experiment, {record}, kShardSize);
    return {d};
  }
};

}  // namespace

TEST_F(SchedulerTest, ACellDerivedWhenItsInputCompletesRunsInTheSameRun) {
  register_cells({make_cell("a", "m-1b", 1e9, 8)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(), {.models = {{"a", "m-1b"}, {"d", "m-1b"}}});
  Deriver deriver{.store = store_.get()};
  SchedulerOptions o = options();
  o.derive_cells = [&deriver](const std::string& completed) { return deriver(completed); };
  const SchedulerReport report = run(link.scheduler_side(), o);
  worker.finish();

  EXPECT_TRUE(report.failed_cells.empty());
  EXPECT_EQ(report.shards_total, 3);  // a's two shards, then d's one
  EXPECT_EQ(report.shards_committed, 3);
  EXPECT_EQ(worker.assigned(), (std::vector<db::ShardKey>{shard("a", 0), shard("a", 4), shard("d", 0)}));
  EXPECT_EQ(rows("cells WHERE id = 'd' AND status = 'done'"), 1);
  // Asked at the start, when "a" completed (not after its first shard), after "d" completed, and
  // once more before leaving.
  EXPECT_EQ(deriver.completed, (std::vector<std::string>{"", "a", "d", ""}));
}

TEST_F(SchedulerTest, AFailedDerivationIsRetriedBeforeTheRunEnds) {
  register_cells({make_cell("a", "m-1b", 1e9, 4)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(), {.models = {{"a", "m-1b"}, {"d", "m-1b"}}});
  Deriver deriver{.store = store_.get(), .fail_calls = 2};  // at the start and when "a" completes
  SchedulerOptions o = options();
  o.derive_cells = [&deriver](const std::string& completed) { return deriver(completed); };
  const SchedulerReport report = run(link.scheduler_side(), o);
  worker.finish();

  EXPECT_TRUE(report.failed_cells.empty());
  EXPECT_EQ(rows("cells WHERE id = 'd' AND status = 'done'"), 1);
}

TEST_F(SchedulerTest, ADerivationThatKeepsFailingEndsTheRunAsFailed) {
  register_cells({make_cell("a", "m-1b", 1e9, 4)});
  InProcessLink link;
  ScriptedWorker worker(link.scheduler_side(), 0, link.worker_side(), {.models = {{"a", "m-1b"}}});
  Deriver deriver{.store = store_.get(), .fail_calls = 1000};
  SchedulerOptions o = options();
  o.derive_cells = [&deriver](const std::string& completed) { return deriver(completed); };
  const SchedulerReport report = run(link.scheduler_side(), o);
  worker.finish();

  EXPECT_EQ(report.shards_committed, 1);  // the grid's own cell is stored all the same
  ASSERT_EQ(report.failed_cells.size(), 1U);
  EXPECT_EQ(report.failed_cells[0], "dependent cells could not be derived (rerun to retry): database is locked");
  EXPECT_TRUE(worker.got_stop());
}

}  // namespace
}  // namespace kvsafe::orchestrator
