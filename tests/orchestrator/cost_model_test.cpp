#include "orchestrator/cost_model.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace kvsafe::orchestrator {
namespace {

CostModelOptions h100() {
  CostModelOptions options;
  options.device = device_profile("h100");
  return options;
}

// Values below are worked out by hand from the formulas in cost_model.h.
TEST(CostModel, DecodeIsBandwidthBoundAndPrefillComputeBound) {
  const CellWork work{.model = "m7b", .params = 7e9, .prompts = 64, .max_new_tokens = 256, .batch_size = 4};
  const CellCost cost = estimate_cell(work, h100());
  EXPECT_EQ(cost.gpus, 1);
  // 16 batches x 256 steps x 14e9 B / (3350e9 B/s x 0.6)
  const double decode = 16 * 256 * 14e9 / (3350e9 * 0.6);
  // 2 x 7e9 FLOPs x (64 x 96) tokens / (989e12 x 0.4)
  const double prefill = 2 * 7e9 * 64 * 96 / (989e12 * 0.4);
  EXPECT_NEAR(cost.gpu_seconds, decode + prefill, 1e-9);
  EXPECT_DOUBLE_EQ(cost.generated_tokens, 64.0 * 256);
  EXPECT_DOUBLE_EQ(cost.load_seconds, 14e9 / 2e9);
}

// Speculative cells: each prompt alone, rounds of k draft steps and one target verify, a round
// yielding 1 + acceptance x k tokens; the draft's prompt is prefilled and its weights loaded too.
TEST(CostModel, SpeculativeCellsPayTheDraftPerRound) {
  const CellWork work{.model = "m7b",
                      .params = 7e9,
                      .prompts = 64,
                      .max_new_tokens = 256,
                      .batch_size = 1,
                      .draft_params = 0.5e9,
                      .draft_tokens = 3};
  CostModelOptions options = h100();
  options.speculative_acceptance = 0.5;
  const CellCost cost = estimate_cell(work, options);
  // 64 prompts x 256 / (1 + 0.5 x 3) rounds x (3 x 1e9 B + 14e9 B) / (3350e9 B/s x 0.6)
  const double decode = 64 * (256 / 2.5) * (3 * 1e9 + 14e9) / (3350e9 * 0.6);
  // (2 x 7e9 + 2 x 0.5e9) FLOPs x (64 x 96) tokens / (989e12 x 0.4)
  const double prefill = (2 * 7e9 + 2 * 0.5e9) * 64 * 96 / (989e12 * 0.4);
  EXPECT_NEAR(cost.gpu_seconds, decode + prefill, 1e-9);
  EXPECT_DOUBLE_EQ(cost.generated_tokens, 64.0 * 256);
  EXPECT_DOUBLE_EQ(cost.load_seconds, 14e9 / 2e9 + 1e9 / 2e9);
  // Acceptance 0 is the upper bound: one token per round.
  options.speculative_acceptance = 0;
  EXPECT_GT(estimate_cell(work, options).gpu_seconds, cost.gpu_seconds);
}

TEST(CostModel, BigModelsGoTensorParallel) {
  const CellWork work{.model = "qwen72b", .params = 72.7e9, .prompts = 4, .max_new_tokens = 1, .batch_size = 4};
  // 145.4e9 B of weights over 0.8 x 80 GiB per GPU = 2.1 -> 3 GPUs.
  EXPECT_EQ(estimate_cell(work, h100()).gpus, 3);
  CostModelOptions h200 = h100();
  h200.device = device_profile("h200");
  EXPECT_EQ(estimate_cell(work, h200).gpus, 2);
}

TEST(CostModel, PerplexityCellsArePrefillOnly) {
  const CellWork work{.model = "m", .params = 1e9, .scored_tokens = 1000000};
  const CellCost cost = estimate_cell(work, h100());
  EXPECT_DOUBLE_EQ(cost.generated_tokens, 0);
  EXPECT_NEAR(cost.gpu_seconds, 2 * 1e9 * 1e6 / (989e12 * 0.4), 1e-12);
}

TEST(CostModel, MissingParameterCountIsAnInputError) {
  EXPECT_THROW(estimate_cell(CellWork{.model = "x", .prompts = 1}, h100()), InputError);
  EXPECT_THROW(device_profile("tpu"), InputError);
}

TEST(CostModel, MakespanSpreadsShardsAndPaysOneLoadPerWorker) {
  // One model, 8 shards of equal work, 4 GPUs: 4 loads, each GPU runs 2 shards.
  const CellWork work{
      .model = "m", .params = 1e9, .prompts = 256, .max_new_tokens = 64, .batch_size = 4, .shard_size = 32};
  const CostModelOptions options = h100();
  const CellCost cost = estimate_cell(work, options);
  const MakespanEstimate on4 = estimate_makespan({work}, 4, options);
  EXPECT_EQ(on4.model_loads, 4);
  EXPECT_NEAR(on4.seconds, cost.load_seconds + cost.gpu_seconds / 4, 1e-9);
  const MakespanEstimate on1 = estimate_makespan({work}, 1, options);
  EXPECT_EQ(on1.model_loads, 1);
  EXPECT_NEAR(on1.seconds, cost.load_seconds + cost.gpu_seconds, 1e-9);
}

TEST(CostModel, TwoModelsOnTwoGpusRunSideBySide) {
  const CellWork a{.model = "a", .params = 7e9, .prompts = 32, .max_new_tokens = 256, .batch_size = 4};
  const CellWork b{.model = "b", .params = 7e9, .prompts = 32, .max_new_tokens = 256, .batch_size = 4};
  const CostModelOptions options = h100();
  const CellCost cost = estimate_cell(a, options);
  const MakespanEstimate estimate = estimate_makespan({a, b}, 2, options);
  EXPECT_EQ(estimate.model_loads, 2);
  EXPECT_NEAR(estimate.seconds, cost.load_seconds + cost.gpu_seconds, 1e-9);
}

TEST(CostModel, ModelLargerThanTheClusterIsRefused) {
  const CellWork work{.model = "qwen72b", .params = 72.7e9, .prompts = 4, .max_new_tokens = 8, .batch_size = 4};
  EXPECT_THROW(estimate_makespan({work}, 2, h100()), InputError);
  EXPECT_NO_THROW(estimate_makespan({work}, 3, h100()));
}

}  // namespace
}  // namespace kvsafe::orchestrator
