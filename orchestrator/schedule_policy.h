#pragma once
// SchedulePolicy: which shard a worker gets next. Pure bookkeeping, no I/O, so its rules
// are unit-tested directly (tests/orchestrator/schedule_policy_test.cpp):
//  1. Model affinity: a worker holding model M gets M's shards while any remain (loading
//     a 72B model costs minutes).
//  2. When it must switch (or holds nothing), it takes the model with the most remaining
//     work per worker already on it, counting itself: work(M) / (holders(M) + 1), where
//     work = remaining prompts x parameter count. Larger models win ties and, through
//     work, go first (longest-processing-time order, so the tail is short).
//  3. Within a model: baselines (kv scheme none) before quantized cells, then grid order,
//     then prompt order, so a refusal cell's full-precision reference is there early.
//  4. A shard that failed on a worker goes to another one when another one is alive.
// Not thread-safe; the scheduler's thread owns it.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "db/records.h"

namespace kvsafe::orchestrator {

struct Cell;

struct PolicyCell {
  std::string id{};         // cell id
  std::string model{};      // model name
  double model_params = 1;  // parameter count (relative weight of a prompt of this model)
  bool baseline = false;    // kv scheme none: the reference of its model/benchmark
  std::int64_t order = 0;   // position in the grid's expansion
};

// From an expanded cell (params: ModelSpec::parameter_count(), else 1e9).
PolicyCell policy_cell(const Cell& cell, std::int64_t order);

class SchedulePolicy {
 public:
  explicit SchedulePolicy(const std::vector<PolicyCell>& cells);

  // A cell that joined during the run (derived from stored results); a known id is ignored.
  void add_cell(const PolicyCell& cell);
  // A shard to run. Throws InputError for a cell the policy was not given.
  void add(const db::ShardKey& shard);
  // A shard that failed on `worker` and will be tried again (elsewhere when possible).
  void requeue(const db::ShardKey& shard, int worker);
  // Forgets the remaining shards of a cell (it failed: its other shards are not run now).
  // Returns how many were dropped.
  std::int64_t drop_cell(const std::string& cell_id);

  // The model `worker` holds now ("" for none); feeds rule 2's holder counts.
  void set_loaded(int worker, const std::string& model);
  // The worker is gone (hung, stopped): no longer a holder, no longer counted alive.
  void remove_worker(int worker);

  // The next shard for `worker`, removed from the queue; nullopt when none is left that it
  // may take. `alive_workers` workers can still take shards (rule 4).
  std::optional<db::ShardKey> next(int worker, int alive_workers);

  bool empty() const { return count_ == 0; }
  std::int64_t shards_left() const { return count_; }
  std::int64_t prompts_left() const;
  // Remaining shards per model (for the progress line).
  std::map<std::string, std::int64_t> shards_left_per_model() const;

 private:
  // (not baseline, grid order, begin): rule 3's order within a model.
  using Order = std::tuple<bool, std::int64_t, std::int64_t>;
  struct Ticket {
    db::ShardKey shard{};
    std::set<int> failed_on{};  // workers this shard failed on
  };
  struct ModelQueue {
    double params = 1;
    std::map<Order, Ticket> tickets{};
    std::int64_t prompts = 0;
  };

  Order order_of(const db::ShardKey& shard) const;
  std::optional<db::ShardKey> take_from(ModelQueue& queue, int worker, int alive_workers);
  void insert(Ticket ticket);

  std::map<std::string, PolicyCell> cells_;       // by id
  std::map<std::string, ModelQueue> models_;      // by model name
  std::map<int, std::string> loaded_;             // worker -> model held
  std::map<db::ShardKey, std::set<int>> failed_;  // workers each requeued shard failed on
  std::int64_t count_ = 0;
};

}  // namespace kvsafe::orchestrator
