// key_magnitudes shards (worker/shard_key_magnitudes.cpp) with stories260K (llama-2 template,
// as the other worker tests) on the paper's custom prompts: the rows' shape, an independent
// recomputation of one prompt's per-channel max |K|, and the 512-token truncation.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/environment.h"
#include "common/error.h"
#include "engine/activation_capture.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "kernels/kv_quant_spec.h"
#include "tests/testing/model_files.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "worker/cell_prompts.h"
#include "worker/shard_executor.h"
#include "worker/shard_internal.h"

namespace kvsafe::worker {
namespace {

using orchestrator::Cell;

std::filesystem::path data_dir() {
  return Environment::from_process().data_dir;
}

// The first `prompts` custom prompts as a key_magnitudes cell: full precision, no generation.
Cell key_magnitudes_cell(std::int64_t prompts = 2, const std::string& kv = "none") {
  Cell cell;
  cell.id = "0123456789abcdef-keys-" + kv;
  cell.model.name = "stories260k";
  cell.model.path = testing::stories260k_gguf_path();
  cell.model.chat_template = "llama-2";
  cell.kv = kernels::parse_kv_label(kv);
  cell.kv_label = kv;
  cell.benchmark.name = "custom";
  cell.benchmark.task = orchestrator::Task::kKeyMagnitudes;
  cell.benchmark.limit = prompts;
  cell.n_prompts = prompts;
  return cell;
}

// Per channel, the max of |x| over the rows of a [rows, channels] float32 tensor, by a plain
// loop over its values (not the worker's reduction).
std::vector<float> max_abs_by_loop(const at::Tensor& captured) {
  const at::Tensor x = captured.to(at::kCPU, at::kFloat).contiguous();
  const std::int64_t rows = x.size(0), channels = x.size(1);
  const float* data = x.data_ptr<float>();
  std::vector<float> out(static_cast<std::size_t>(channels), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < channels; ++c) {
      const float v = std::fabs(data[r * channels + c]);
      if (v > out[static_cast<std::size_t>(c)]) out[static_cast<std::size_t>(c)] = v;
    }
  }
  return out;
}

void expect_bitwise_equal(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t c = 0; c < a.size(); ++c) {
    EXPECT_EQ(std::bit_cast<std::uint32_t>(a[c]), std::bit_cast<std::uint32_t>(b[c]))
        << what << " channel " << c << ": " << a[c] << " vs " << b[c];
  }
}

class KeyMagnitudesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::stories260k_gguf_path()) ||
        !std::filesystem::exists(data_dir() / "paper_repo" / "refusal.txt")) {
      GTEST_SKIP() << "stories260K or ../shared/datasets missing";
    }
    model_ = engine::Model::load(testing::stories260k_gguf_path(), {.device = "cpu", .threads = 1});
    tokenizer_ = engine::Tokenizer::load(testing::stories260k_gguf_path());
  }

  // Custom prompt i rendered here, independently of the worker: llama-2, the template's default
  // system prompt, generation prompt added.
  std::vector<engine::TokenId> rendered(std::int64_t i) const {
    const eval::Benchmark prompts = load_cell_prompts(key_magnitudes_cell().benchmark, data_dir());
    const engine::ChatTemplate chat =
        engine::load_chat_template(testing::stories260k_gguf_path(), {.name = "llama-2", .template_file = {}});
    const std::vector<engine::ChatMessage> turns{
        {.role = engine::ChatRole::kUser, .content = prompts.prompts.at(static_cast<std::size_t>(i)).text}};
    return chat.tokenize(*tokenizer_, turns, engine::ChatOptions{}).ids;
  }

  std::int64_t channels() const { return model_->config().num_kv_heads * model_->config().head_dim; }

  ShardExecutor executor_{{.data_dir = data_dir(), .threads = 1}};
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
};

TEST_F(KeyMagnitudesTest, OneRowPerPromptAndLayer) {
  const std::int64_t layers = model_->config().num_layers;
  ASSERT_EQ(layers, 5);  // stories260K
  std::vector<std::int64_t> progress;
  const db::ShardResult result =
      executor_.run(key_magnitudes_cell(), 0, 2, [&](const ShardProgress& p) { progress.push_back(p.prompts_done); });
  EXPECT_EQ(progress, (std::vector<std::int64_t>{1, 2}));  // per prompt
  EXPECT_TRUE(result.generations.empty());
  EXPECT_TRUE(result.ppl_windows.empty());
  ASSERT_EQ(result.key_magnitudes.size(), static_cast<std::size_t>(2 * layers));
  for (std::int64_t prompt = 0; prompt < 2; ++prompt) {
    const auto tokens = static_cast<std::int64_t>(rendered(prompt).size());
    for (std::int64_t layer = 0; layer < layers; ++layer) {
      const db::KeyMagnitudeRow& row = result.key_magnitudes[static_cast<std::size_t>(prompt * layers + layer)];
      EXPECT_EQ(row.prompt_index, prompt);
      EXPECT_EQ(row.layer, layer);
      EXPECT_EQ(row.tokens, tokens);
      EXPECT_LE(row.tokens, worker::detail::kKeyMagnitudeMaxTokens);
      ASSERT_EQ(static_cast<std::int64_t>(row.max_abs.size()), channels());
      for (const float v : row.max_abs) {
        EXPECT_TRUE(std::isfinite(v));
        EXPECT_GE(v, 0.0f);
      }
    }
  }
  // Each prompt runs alone: a shard of one prompt gives the same rows, bit for bit.
  const db::ShardResult second = executor_.run(key_magnitudes_cell(), 1, 2);
  ASSERT_EQ(second.key_magnitudes.size(), static_cast<std::size_t>(layers));
  for (std::int64_t layer = 0; layer < layers; ++layer) {
    const db::KeyMagnitudeRow& alone = second.key_magnitudes[static_cast<std::size_t>(layer)];
    EXPECT_EQ(alone.prompt_index, 1);
    expect_bitwise_equal(alone.max_abs, result.key_magnitudes[static_cast<std::size_t>(layers + layer)].max_abs,
                         "layer " + std::to_string(layer));
  }
}

// The model run here with its own capture, the max recomputed by a loop: the row must match
// bit for bit (max is exact in float32, whatever the order).
TEST_F(KeyMagnitudesTest, MatchesAnIndependentCapture) {
  const std::int64_t prompt = 1;
  const std::vector<engine::TokenId> ids = rendered(prompt);
  const auto n = static_cast<std::int64_t>(ids.size());
  ASSERT_GT(n, 5);
  std::vector<std::int64_t> tokens(ids.begin(), ids.end());
  const at::Tensor input = at::from_blob(tokens.data(), {1, n}, at::TensorOptions().dtype(at::kLong)).clone();
  std::vector<std::int64_t> positions;
  for (std::int64_t p = 0; p < n; ++p) positions.push_back(p);
  engine::ActivationCapture capture({.layers = {},
                                     .kinds = {engine::CaptureKind::kKeyExact},
                                     .positions = std::vector<std::vector<std::int64_t>>{positions}});
  engine::KvCache cache(*model_, 1);
  (void)model_->forward(input, at::Tensor(), cache, {.logits = engine::LogitsMode::kNone, .capture = &capture});

  const db::ShardResult result = executor_.run(key_magnitudes_cell(), prompt, prompt + 1);
  const std::int64_t layers = model_->config().num_layers;
  ASSERT_EQ(result.key_magnitudes.size(), static_cast<std::size_t>(layers));
  int positive = 0;
  for (std::int64_t layer = 0; layer < layers; ++layer) {
    const at::Tensor keys = capture.get(engine::CaptureKind::kKeyExact, layer);
    ASSERT_EQ(keys.size(0), n);
    const std::vector<float> expected = max_abs_by_loop(keys);
    const db::KeyMagnitudeRow& row = result.key_magnitudes[static_cast<std::size_t>(layer)];
    EXPECT_EQ(row.tokens, n);
    expect_bitwise_equal(row.max_abs, expected, "layer " + std::to_string(layer));
    for (const float v : expected) positive += v > 0.0f ? 1 : 0;
  }
  EXPECT_GT(positive, 0);  // not all zeros
}

// No custom prompt reaches 512 tokens: a longer sequence goes to the per-prompt function
// directly. Its rows are those of its first 512 tokens, bit for bit.
TEST_F(KeyMagnitudesTest, PromptsAreCutToTheirFirst512Tokens) {
  const std::vector<engine::TokenId> one = rendered(0);
  std::vector<engine::TokenId> long_prompt;
  while (long_prompt.size() < 700) long_prompt.insert(long_prompt.end(), one.begin(), one.end());
  const std::vector<engine::TokenId> first(long_prompt.begin(),
                                           long_prompt.begin() + worker::detail::kKeyMagnitudeMaxTokens);
  const auto cut = worker::detail::prompt_key_magnitudes(*model_, long_prompt, 7);
  const auto reference = worker::detail::prompt_key_magnitudes(*model_, first, 7);
  ASSERT_EQ(cut.size(), reference.size());
  for (std::size_t layer = 0; layer < cut.size(); ++layer) {
    EXPECT_EQ(cut[layer].prompt_index, 7);
    EXPECT_EQ(cut[layer].tokens, 512);
    EXPECT_EQ(reference[layer].tokens, 512);
    expect_bitwise_equal(cut[layer].max_abs, reference[layer].max_abs, "layer " + std::to_string(layer));
  }
  // A short prompt keeps all of its tokens.
  EXPECT_EQ(worker::detail::prompt_key_magnitudes(*model_, one, 0).front().tokens,
            static_cast<std::int64_t>(one.size()));
  EXPECT_THROW((void)worker::detail::prompt_key_magnitudes(*model_, std::vector<engine::TokenId>{}, 0), InputError);
}

TEST_F(KeyMagnitudesTest, AQuantizedCellIsRefused) {
  try {
    (void)executor_.run(key_magnitudes_cell(2, "int4-ptok-asym"), 0, 2);
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("full precision"), std::string::npos) << message;
    EXPECT_NE(message.find("shard [0, 2)"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace kvsafe::worker
