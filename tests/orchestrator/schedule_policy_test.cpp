// The scheduler's assignment rules (orchestrator/schedule_policy.h) on real PolicyCells.
#include <gtest/gtest.h>

#include "common/error.h"
#include "orchestrator/schedule_policy.h"

namespace kvsafe::orchestrator {
namespace {

db::ShardKey shard(const std::string& cell, std::int64_t begin, std::int64_t size = 4) {
  return {.cell_id = cell, .begin = begin, .end = begin + size};
}

// Two models: "big" (7B, one baseline + one quantized cell) and "small" (135M, two cells).
std::vector<PolicyCell> two_models() {
  return {
      {.id = "big-q4", .model = "big", .model_params = 7e9, .baseline = false, .order = 0},
      {.id = "big-fp", .model = "big", .model_params = 7e9, .baseline = true, .order = 1},
      {.id = "small-fp", .model = "small", .model_params = 1.35e8, .baseline = true, .order = 2},
      {.id = "small-q4", .model = "small", .model_params = 1.35e8, .baseline = false, .order = 3},
  };
}

SchedulePolicy filled(const std::vector<PolicyCell>& cells, int shards_per_cell) {
  SchedulePolicy policy(cells);
  for (const auto& cell : cells) {
    for (int i = 0; i < shards_per_cell; ++i) policy.add(shard(cell.id, 4 * i));
  }
  return policy;
}

TEST(SchedulePolicy, LargerModelFirstAndBaselineBeforeQuantized) {
  SchedulePolicy policy = filled(two_models(), 2);
  const auto first = policy.next(/*worker=*/1, /*alive_workers=*/2);
  ASSERT_TRUE(first);
  // LPT: the 7B model has the most work; within it the baseline comes first although the
  // quantized cell is earlier in the grid.
  EXPECT_EQ(first->cell_id, "big-fp");
  EXPECT_EQ(first->begin, 0);
}

TEST(SchedulePolicy, WorkerKeepsItsLoadedModelWhileShardsRemain) {
  SchedulePolicy policy = filled(two_models(), 2);
  policy.set_loaded(1, "small");
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i) got.push_back(policy.next(1, 2)->cell_id);
  EXPECT_EQ(got, (std::vector<std::string>{"small-fp", "small-fp", "small-q4", "small-q4"}));
  // small is exhausted: it must switch, to the only model left.
  EXPECT_EQ(policy.next(1, 2)->cell_id, "big-fp");
}

TEST(SchedulePolicy, SwitchGoesToMostWorkPerLoadedWorker) {
  // Equal-size models: "a" has 8 shards and 3 workers on it, "b" has 4 shards and none.
  std::vector<PolicyCell> cells = {{.id = "a0", .model = "a", .model_params = 1e9, .baseline = true, .order = 0},
                                   {.id = "b0", .model = "b", .model_params = 1e9, .baseline = true, .order = 1}};
  SchedulePolicy policy(cells);
  for (int i = 0; i < 8; ++i) policy.add(shard("a0", 4 * i));
  for (int i = 0; i < 4; ++i) policy.add(shard("b0", 4 * i));
  for (int w = 1; w <= 3; ++w) policy.set_loaded(w, "a");
  // 32 prompts / (3 + 1) = 8 per worker on a, 16 / (0 + 1) = 16 on b.
  EXPECT_EQ(policy.next(4, 4)->cell_id, "b0");
  // With nobody on a either, a has more work.
  SchedulePolicy fresh(cells);
  for (int i = 0; i < 8; ++i) fresh.add(shard("a0", 4 * i));
  for (int i = 0; i < 4; ++i) fresh.add(shard("b0", 4 * i));
  EXPECT_EQ(fresh.next(4, 4)->cell_id, "a0");
}

TEST(SchedulePolicy, FailedShardGoesToAnotherWorkerWhenOneIsAlive) {
  SchedulePolicy policy(two_models());
  policy.add(shard("small-fp", 0));
  auto taken = policy.next(1, 2);
  ASSERT_TRUE(taken);
  policy.requeue(*taken, 1);
  EXPECT_FALSE(policy.next(1, 2)) << "worker 1 failed it and worker 2 is alive";
  EXPECT_EQ(policy.next(2, 2), taken);
  // Alone, the same worker may retry it.
  policy.requeue(*taken, 2);
  EXPECT_EQ(policy.next(2, 1), taken);
}

TEST(SchedulePolicy, DropCellForgetsItsShardsAndCounts) {
  SchedulePolicy policy = filled(two_models(), 3);
  EXPECT_EQ(policy.shards_left(), 12);
  EXPECT_EQ(policy.prompts_left(), 48);
  EXPECT_EQ(policy.drop_cell("small-q4"), 3);
  EXPECT_EQ(policy.shards_left(), 9);
  EXPECT_EQ(policy.prompts_left(), 36);
  EXPECT_EQ(policy.shards_left_per_model().at("small"), 3);
  while (policy.next(1, 1)) {
  }
  EXPECT_TRUE(policy.empty());
  EXPECT_EQ(policy.prompts_left(), 0);
}

TEST(SchedulePolicy, UnknownCellIsRefused) {
  SchedulePolicy policy(two_models());
  EXPECT_THROW(policy.add(shard("nope", 0)), InputError);
}

}  // namespace
}  // namespace kvsafe::orchestrator
