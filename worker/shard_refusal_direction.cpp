// refusal_direction shards: the judge-free diagnostic's activation pass. Each prompt, rendered
// as the refusal cells render it, runs alone (batch 1) through the model with the cell's KV
// quantizer on its prefill; the residual stream after every layer at the last prompt token is
// summed per class (harmful, harmless) over the shard. No token is generated and nothing is
// judged. report/refusal_direction_report.h turns the sums into the direction and its erosion.

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "common/error.h"
#include "engine/activation_capture.h"
#include "engine/kv_cache.h"
#include "engine/quantized_kv_path.h"
#include "worker/shard_internal.h"

namespace kvsafe::worker::detail {

at::Tensor last_token_residuals(const engine::Model& model, std::span<const engine::TokenId> ids,
                                engine::KvPath* kv_path) {
  const auto n = static_cast<std::int64_t>(ids.size());
  KVSAFE_CHECK(n > 0, "a prompt has no tokens");
  std::vector<std::int64_t> tokens(ids.begin(), ids.end());
  const at::Tensor input = at::from_blob(tokens.data(), {1, n}, at::TensorOptions().dtype(at::kLong)).clone();
  engine::ActivationCapture capture({.layers = {},
                                     .kinds = {engine::CaptureKind::kResidual},
                                     .positions = std::vector<std::vector<std::int64_t>>{{n - 1}}});
  engine::KvCache cache(model, /*batch=*/1, kv_path);  // a fresh cache: the prompt alone
  const bool cache_placement = kv_path != nullptr && kv_path->placement() == engine::KvPlacement::kCache;
  if (cache_placement && n > 1) {
    // A cache placement quantizes what the cache stores; a prefill may attend to its exact keys
    // and values (prefill_attention: exact), which would leave the last token untouched. So
    // the last token runs as a decode step over the quantized history of the others, as the
    // first generated token would. The projection placement quantizes each call's own K/V:
    // one prefill, as the refusal cells run it.
    (void)model.forward(input.narrow(1, 0, n - 1), at::Tensor(), cache,
                        {.logits = engine::LogitsMode::kNone, .capture = &capture});
    (void)model.forward(input.narrow(1, n - 1, 1), at::Tensor(), cache,
                        {.logits = engine::LogitsMode::kNone, .capture = &capture});
  } else {
    (void)model.forward(input, at::Tensor(), cache, {.logits = engine::LogitsMode::kNone, .capture = &capture});
  }

  const std::int64_t layers = model.config().num_layers;
  std::vector<at::Tensor> rows;
  rows.reserve(static_cast<std::size_t>(layers));
  for (std::int64_t layer = 0; layer < layers; ++layer) {
    const at::Tensor residual = capture.get(engine::CaptureKind::kResidual, layer);  // [1, hidden]
    KVSAFE_ASSERT(residual.defined() && residual.dim() == 2 && residual.size(0) == 1, "layer ", layer,
                  ": the captured residual is not one row");
    rows.push_back(residual.squeeze(0));
  }
  return at::stack(rows).to(at::kCPU, at::kDouble).contiguous();
}

db::ShardResult run_refusal_direction_shard(LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                            std::int64_t end, const ShardExecutorOptions& options,
                                            const ShardProgressCallback& on_progress) {
  const eval::Benchmark benchmark = shard_prompts(cell, end, options);
  const engine::ChatTemplate chat = chat_template_for(cell.model);
  const engine::ChatOptions chat_opts = chat_options_for(cell);

  // Per class: the float64 sum [layers, hidden] and how many prompts it holds.
  at::Tensor sums[2];
  std::int64_t counts[2] = {0, 0};
  ShardProgress progress;
  for (std::int64_t i = begin; i < end; ++i) {
    const eval::Prompt& prompt = benchmark.prompts[static_cast<std::size_t>(i)];
    const std::vector<engine::ChatMessage> turns{{.role = engine::ChatRole::kUser, .content = prompt.text}};
    const engine::TokenizedChat rendered = chat.tokenize(*loaded.tokenizer, turns, chat_opts);
    KVSAFE_CHECK(!rendered.ids.empty(), "prompt ", i, " (", prompt.prompt_id, ") renders to no tokens");
    // A path per prompt: state a path keeps (an FP8 scale frozen at its first append) must
    // come from this prompt alone, not from the shard's first one.
    const std::unique_ptr<engine::KvPath> kv_path = engine::make_kv_path(cell.kv);  // nullptr for "none"
    const at::Tensor residuals = last_token_residuals(*loaded.model, rendered.ids, kv_path.get());
    const int c = prompt.harmful ? 1 : 0;
    sums[c] = sums[c].defined() ? sums[c] + residuals : residuals;
    ++counts[c];
    ++progress.prompts_done;
    if (on_progress) on_progress(progress);
  }

  db::ShardResult result;
  result.shard = {.cell_id = cell.id, .begin = begin, .end = end};
  for (const int c : {1, 0}) {
    if (counts[c] == 0) continue;
    // NOTE: a NaN or infinity (a diverging quantized prefill) fails the shard here, naming the
    // class and layer, rather than at commit.
    const at::Tensor as_float = sums[c].to(at::kFloat).contiguous();
    for (std::int64_t layer = 0; layer < as_float.size(0); ++layer) {
      KVSAFE_CHECK(at::isfinite(as_float[layer]).all().item<bool>(), "the ", c == 1 ? "harmful" : "harmless",
                   " residual sum at layer ", layer, " is not finite");
      db::DirectionSumRow row{.layer = layer, .harmful = c == 1, .prompts = counts[c]};
      const float* values = as_float[layer].data_ptr<float>();
      row.sum.assign(values, values + as_float.size(1));
      result.direction_sums.push_back(std::move(row));
    }
  }
  return result;
}

}  // namespace kvsafe::worker::detail
