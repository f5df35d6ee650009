// refusal_direction shards (worker/shard_refusal_direction.cpp) with stories260K (llama-2
// template, as the other worker tests) on the calibration splits: the cell's balanced prompt
// draw, the rows' shape, the sums against an independent recomputation (one left-padded batch
// through Model::forward, captured at each row's own last token), and the KV quantizer acting
// on the prefill.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/environment.h"
#include "engine/activation_capture.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "eval/prompt_sampling.h"
#include "eval/refusal_direction_file.h"
#include "kernels/kv_quant_spec.h"
#include "orchestrator/grid_expansion.h"
#include "tests/testing/model_files.h"
#include "tests/testing/temp_dir.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "worker/cell_prompts.h"
#include "worker/shard_executor.h"

namespace kvsafe::worker {
namespace {

using orchestrator::Cell;

std::filesystem::path data_dir() {
  return Environment::from_process().data_dir;
}

// A calibration cell drawing `per_class` harmful and `per_class` harmless prompts.
Cell direction_cell(const std::string& kv, std::int64_t per_class = 3) {
  Cell cell;
  cell.id = "0123456789abcdef-direction-" + kv;
  cell.model.name = "stories260k";
  cell.model.path = testing::stories260k_gguf_path();
  cell.model.chat_template = "llama-2";
  cell.kv = kernels::parse_kv_label(kv);
  cell.kv_label = kv;
  cell.benchmark.name = "calibration";
  cell.benchmark.task = orchestrator::Task::kRefusalDirection;
  cell.benchmark.sample = per_class;
  cell.benchmark.seed = 7;
  cell.n_prompts = orchestrator::prompt_count(cell.benchmark);
  return cell;
}

class RefusalDirectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::stories260k_gguf_path()) ||
        !std::filesystem::exists(data_dir() / "refusal_direction" / "splits" / "harmful_train.json")) {
      GTEST_SKIP() << "stories260K or ../shared/datasets missing";
    }
    model_ = engine::Model::load(testing::stories260k_gguf_path(), {.device = "cpu", .threads = 1});
    tokenizer_ = engine::Tokenizer::load(testing::stories260k_gguf_path());
  }

  // The prompts rendered here, independently of the worker: llama-2, the template's default
  // system prompt, generation prompt added.
  std::vector<std::vector<engine::TokenId>> rendered(const Cell& cell) const {
    const eval::Benchmark prompts = load_cell_prompts(cell.benchmark, data_dir());
    const engine::ChatTemplate chat =
        engine::load_chat_template(testing::stories260k_gguf_path(), {.name = "llama-2", .template_file = {}});
    std::vector<std::vector<engine::TokenId>> out;
    for (const eval::Prompt& p : prompts.prompts) {
      const std::vector<engine::ChatMessage> turns{{.role = engine::ChatRole::kUser, .content = p.text}};
      out.push_back(chat.tokenize(*tokenizer_, turns, engine::ChatOptions{}).ids);
    }
    return out;
  }

  ShardExecutor executor_{{.data_dir = data_dir(), .threads = 1}};
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
};

TEST(CalibrationPrompts, EachClassIsDrawnApartAndTheCountMatchesThePlan) {
  if (!std::filesystem::exists(data_dir() / "refusal_direction" / "splits" / "harmful_train.json")) {
    GTEST_SKIP() << "../shared/datasets missing";
  }
  orchestrator::BenchmarkSpec spec{.name = "calibration", .task = orchestrator::Task::kRefusalDirection};
  EXPECT_EQ(orchestrator::prompt_count(spec), 256);  // 128 + 128 by default
  const eval::Benchmark drawn = load_cell_prompts(spec, data_dir());
  ASSERT_EQ(drawn.prompts.size(), 256U);
  for (std::size_t i = 0; i < 256; ++i) EXPECT_EQ(drawn.prompts[i].harmful, i < 128) << i;

  // A sample above the smaller class (260 harmful) gives 260 of each, as the plan counts.
  spec.sample = 300;
  EXPECT_EQ(orchestrator::prompt_count(spec), 520);
  EXPECT_EQ(load_cell_prompts(spec, data_dir()).prompts.size(), 520U);
  spec.sample.reset();

  // limit keeps the first N of each file, sample draws from those with the seed.
  spec.limit = 20;
  spec.sample = 5;
  spec.seed = 3;
  EXPECT_EQ(orchestrator::prompt_count(spec), 10);
  const eval::Benchmark limited = load_cell_prompts(spec, data_dir());
  eval::Benchmark all;
  ASSERT_TRUE(eval::load_benchmark("calibration", data_dir(), {}, &all).is_ok());
  std::vector<const eval::Prompt*> harmful, harmless;
  for (const eval::Prompt& p : all.prompts) (p.harmful ? harmful : harmless).push_back(&p);
  const std::vector<std::size_t> picks = eval::sample_indices(20, 5, 3);
  ASSERT_EQ(limited.prompts.size(), 10U);
  for (std::size_t k = 0; k < 5; ++k) {
    EXPECT_EQ(limited.prompts[k].prompt_id, harmful[picks[k]]->prompt_id);
    EXPECT_EQ(limited.prompts[5 + k].prompt_id, harmless[picks[k]]->prompt_id);
  }
}

TEST_F(RefusalDirectionTest, ShardSumsEqualABatchedRecomputation) {
  const Cell cell = direction_cell("none");
  ASSERT_EQ(cell.n_prompts, 6);
  const std::int64_t layers = model_->config().num_layers, hidden = model_->config().hidden_size;
  std::vector<std::int64_t> progress;
  // [2, 5): one harmful prompt (2) and two harmless ones (3, 4).
  const db::ShardResult result =
      executor_.run(cell, 2, 5, [&](const ShardProgress& p) { progress.push_back(p.prompts_done); });
  EXPECT_EQ(progress, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_TRUE(result.generations.empty());
  ASSERT_EQ(result.direction_sums.size(), static_cast<std::size_t>(2 * layers));
  for (std::int64_t i = 0; i < 2 * layers; ++i) {
    const db::DirectionSumRow& row = result.direction_sums[static_cast<std::size_t>(i)];
    EXPECT_EQ(row.harmful, i < layers);  // harmful rows first
    EXPECT_EQ(row.layer, i % layers);
    EXPECT_EQ(row.prompts, i < layers ? 1 : 2);
    EXPECT_EQ(static_cast<std::int64_t>(row.sum.size()), hidden);
  }

  // The same three prompts as one left-padded batch, each captured at its own last token.
  const auto ids = rendered(cell);
  const std::int64_t width = static_cast<std::int64_t>(std::max({ids[2].size(), ids[3].size(), ids[4].size()}));
  at::Tensor tokens = at::zeros({3, width}, at::kLong);
  at::Tensor valid = at::zeros({3, width}, at::kBool);
  std::vector<std::vector<std::int64_t>> positions;
  for (std::int64_t row = 0; row < 3; ++row) {
    const auto& prompt = ids[static_cast<std::size_t>(row + 2)];
    const auto n = static_cast<std::int64_t>(prompt.size());
    for (std::int64_t t = 0; t < n; ++t) {
      tokens[row][width - n + t] = static_cast<std::int64_t>(prompt[static_cast<std::size_t>(t)]);
      valid[row][width - n + t] = true;
    }
    positions.push_back({n - 1});
  }
  engine::ActivationCapture capture({.layers = {}, .kinds = {engine::CaptureKind::kResidual}, .positions = positions});
  engine::KvCache cache(*model_, 3);
  (void)model_->forward(tokens, valid, cache, {.logits = engine::LogitsMode::kNone, .capture = &capture});
  for (std::int64_t layer = 0; layer < layers; ++layer) {
    const at::Tensor rows = capture.get(engine::CaptureKind::kResidual, layer).to(at::kDouble);  // [3, hidden]
    const at::Tensor harmful = rows[0], harmless = rows[1] + rows[2];
    const db::DirectionSumRow& h = result.direction_sums[static_cast<std::size_t>(layer)];
    const db::DirectionSumRow& b = result.direction_sums[static_cast<std::size_t>(layers + layer)];
    for (std::int64_t c = 0; c < hidden; ++c) {
      EXPECT_NEAR(h.sum[static_cast<std::size_t>(c)], harmful[c].item<double>(), 1e-4) << "layer " << layer;
      EXPECT_NEAR(b.sum[static_cast<std::size_t>(c)], harmless[c].item<double>(), 1e-4) << "layer " << layer;
    }
  }
}

// Largest |difference| between two shards' sums over every row.
double max_difference(const db::ShardResult& a, const db::ShardResult& b) {
  double out = 0;
  for (std::size_t r = 0; r < a.direction_sums.size(); ++r) {
    for (std::size_t c = 0; c < a.direction_sums[r].sum.size(); ++c) {
      out = std::max(out, static_cast<double>(std::fabs(a.direction_sums[r].sum[c] - b.direction_sums[r].sum[c])));
    }
  }
  return out;
}

TEST_F(RefusalDirectionTest, TheKvQuantizerActsOnThePrefill) {
  const db::ShardResult full = executor_.run(direction_cell("none"), 0, 6);
  const db::ShardResult int8 = executor_.run(direction_cell("int8-ptok-asym"), 0, 6);
  const db::ShardResult int2 = executor_.run(direction_cell("int2-ptok-asym"), 0, 6);
  ASSERT_EQ(full.direction_sums.size(), int2.direction_sums.size());
  // Layer 0's attention already reads quantized keys and values: every layer moves, int2 more.
  const double small = max_difference(full, int8), large = max_difference(full, int2);
  EXPECT_GT(small, 0.0);
  EXPECT_GT(large, 10 * small);
  // Deterministic: the same cell twice gives the same floats.
  EXPECT_EQ(max_difference(int2, executor_.run(direction_cell("int2-ptok-asym"), 0, 6)), 0.0);
  // A cache placement with an exact prefill: the last token runs as a decode step over the
  // quantized history, so the quantizer still moves the residuals (an exact one-call prefill
  // would not).
  EXPECT_GT(max_difference(full, executor_.run(direction_cell("int2-ptok-asym-cache"), 0, 6)), 10 * small);
}

// A steered model (grid `steer`): the worker loads the file's direction at the layer, scaled by
// alpha, into the engine: the residual sums before that layer stay, the ones at and after it move.
TEST_F(RefusalDirectionTest, ASteeredModelAddsTheFilesDirectionAfterItsLayer) {
  const std::int64_t layers = model_->config().num_layers, hidden = model_->config().hidden_size;
  testing::TempDir dir("steered_worker");
  eval::RefusalDirectionFile file{
      .model = "stories260k", .cell_id = "c", .setting = "", .harmful_prompts = 1, .harmless_prompts = 1};
  for (std::int64_t layer = 0; layer < layers; ++layer) {
    file.directions.emplace_back(static_cast<std::size_t>(hidden), 0.25 * static_cast<double>(layer + 1));
  }
  eval::write_refusal_direction_file(dir.path() / "dir.json", file);
  Cell steered = direction_cell("none");
  steered.id += "-steered";
  steered.model.name = "stories260k-steered";  // another model: the executor loads it anew
  steered.model.steer = orchestrator::SteerSpec{.direction_path = dir.path() / "dir.json", .layer = 2, .alpha = 2.0};
  const db::ShardResult plain = executor_.run(direction_cell("none"), 0, 1);
  const db::ShardResult moved = executor_.run(steered, 0, 1);
  ASSERT_EQ(plain.direction_sums.size(), moved.direction_sums.size());
  for (std::int64_t layer = 0; layer < layers; ++layer) {
    const auto& a = plain.direction_sums[static_cast<std::size_t>(layer)].sum;
    const auto& b = moved.direction_sums[static_cast<std::size_t>(layer)].sum;
    if (layer < 2) {
      EXPECT_EQ(a, b) << "layer " << layer;
    } else if (layer == 2) {
      // One prompt: its residual after layer 2 plus 2 x 0.75 in every channel.
      for (std::int64_t c = 0; c < hidden; ++c) {
        EXPECT_NEAR(b[static_cast<std::size_t>(c)] - a[static_cast<std::size_t>(c)], 1.5, 1e-5) << c;
      }
    } else {
      EXPECT_NE(a, b) << "layer " << layer;
    }
  }
}

}  // namespace
}  // namespace kvsafe::worker
