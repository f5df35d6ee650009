// key_magnitudes shards: the channel ablation's activation pass. Each prompt, rendered as the
// refusal cells render it, runs alone through the model at full precision; per layer, the
// per-channel max |K| over its tokens becomes one db::KeyMagnitudeRow. The paper's
// get_channel_magnitudes (experiments/run_pcr_prediction.py) does the same at one layer, then
// takes the max over prompts; the rows keep every layer and prompt, so the caller chooses.

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <span>
#include <utility>
#include <vector>

#include "common/error.h"
#include "engine/activation_capture.h"
#include "engine/kv_cache.h"
#include "engine/quantized_kv_path.h"
#include "worker/shard_internal.h"

namespace kvsafe::worker::detail {

std::vector<db::KeyMagnitudeRow> prompt_key_magnitudes(const engine::Model& model, std::span<const engine::TokenId> ids,
                                                       std::int64_t prompt_index) {
  const auto n = std::min<std::int64_t>(static_cast<std::int64_t>(ids.size()), kKeyMagnitudeMaxTokens);
  KVSAFE_CHECK(n > 0, "prompt ", prompt_index, " has no tokens");
  std::vector<std::int64_t> tokens(ids.begin(), ids.begin() + n);
  const at::Tensor input = at::from_blob(tokens.data(), {1, n}, at::TensorOptions().dtype(at::kLong)).clone();

  std::vector<std::int64_t> positions(static_cast<std::size_t>(n));
  for (std::int64_t p = 0; p < n; ++p) positions[static_cast<std::size_t>(p)] = p;
  // Empty layers = every layer; every position of the one row.
  engine::ActivationCapture capture({.layers = {},
                                     .kinds = {engine::CaptureKind::kKeyExact},
                                     .positions = std::vector<std::vector<std::int64_t>>{positions}});
  engine::KvCache cache(model, /*batch=*/1, /*path=*/nullptr);  // full precision: no KV path
  (void)model.forward(input, at::Tensor(), cache, {.logits = engine::LogitsMode::kNone, .capture = &capture});

  const engine::ModelConfig& config = model.config();
  const std::int64_t channels = config.num_kv_heads * config.head_dim;
  std::vector<db::KeyMagnitudeRow> rows;
  rows.reserve(static_cast<std::size_t>(config.num_layers));
  for (std::int64_t layer = 0; layer < config.num_layers; ++layer) {
    const at::Tensor keys = capture.get(engine::CaptureKind::kKeyExact, layer);  // [n, kv_heads * head_dim] float32
    KVSAFE_ASSERT(keys.defined() && keys.dim() == 2 && keys.size(0) == n && keys.size(1) == channels, "layer ", layer,
                  ": captured keys are not [", n, ", ", channels, "]");
    // max is exact in float32 whatever the reduction order.
    const at::Tensor max_abs = keys.to(at::kFloat).abs().amax(0).to(at::kCPU).contiguous();  // [channels]
    const float* values = max_abs.data_ptr<float>();
    db::KeyMagnitudeRow row{.prompt_index = prompt_index, .layer = layer, .tokens = n};
    row.max_abs.assign(values, values + channels);
    // NOTE: a NaN or infinity (a half-precision overflow) cannot be stored as JSON: the shard
    // fails here, naming the prompt and layer, rather than at commit.
    KVSAFE_CHECK(std::all_of(row.max_abs.begin(), row.max_abs.end(), [](float v) { return std::isfinite(v); }),
                 "prompt ", prompt_index, " layer ", layer, ": max |K| is not finite");
    rows.push_back(std::move(row));
  }
  return rows;
}

db::ShardResult run_key_magnitude_shard(LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                        std::int64_t end, const ShardExecutorOptions& options,
                                        const ShardProgressCallback& on_progress) {
  KVSAFE_CHECK(engine::make_kv_path(cell.kv) == nullptr,
               "a key_magnitudes cell runs at full precision: its kv must be none, not ", cell.kv_label);
  const eval::Benchmark benchmark = shard_prompts(cell, end, options);
  const engine::ChatTemplate chat = chat_template_for(cell.model);
  const engine::ChatOptions chat_opts = chat_options_for(cell);

  db::ShardResult result;
  result.shard = {.cell_id = cell.id, .begin = begin, .end = end};
  ShardProgress progress;
  for (std::int64_t i = begin; i < end; ++i) {
    const eval::Prompt& prompt = benchmark.prompts[static_cast<std::size_t>(i)];
    const std::vector<engine::ChatMessage> turns{{.role = engine::ChatRole::kUser, .content = prompt.text}};
    const engine::TokenizedChat rendered = chat.tokenize(*loaded.tokenizer, turns, chat_opts);
    std::vector<db::KeyMagnitudeRow> rows = prompt_key_magnitudes(*loaded.model, rendered.ids, i);
    std::move(rows.begin(), rows.end(), std::back_inserter(result.key_magnitudes));
    ++progress.prompts_done;
    if (on_progress) on_progress(progress);
  }
  return result;
}

}  // namespace kvsafe::worker::detail
