#pragma once
// Private to worker/: what shard_executor.cpp hands to the per-task shard runners
// (shard_generation.cpp, shard_perplexity.cpp, shard_key_magnitudes.cpp,
// shard_refusal_direction.cpp).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "db/records.h"
#include "engine/kv_path.h"
#include "engine/model.h"
#include "eval/benchmark_registry.h"
#include "eval/refusal_judge.h"
#include "modelfile/generation_config.h"
#include "orchestrator/cell.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "worker/shard_executor.h"

namespace kvsafe::worker::detail {

// The model a worker holds, with what is derived from it and worth keeping between shards.
struct LoadedModel {
  std::string name{};                              // the grid's model name
  std::filesystem::path path{};                    // weights file or folder
  std::unique_ptr<engine::Model> model{};          // never null once loaded
  std::unique_ptr<engine::Tokenizer> tokenizer{};  // the model's own tokenizer
  engine::GenerationConfig generation_config{};    // its folder's generation_config.json (empty: none)
  std::string corpus_key{};                        // "<benchmark>\n<data dir>" of corpus_tokens
  std::vector<engine::TokenId> corpus_tokens{};    // perplexity corpus, tokenized once per model
  // Full-precision first-step logits per prompt of a batch, keyed by the batch's token ids
  // (shard_generation.cpp): the quantized cells of one benchmark share one reference prefill
  // per batch. Bounded; dropped with the model.
  std::map<std::string, std::vector<std::vector<float>>> reference_logits{};
  std::int64_t reference_floats = 0;  // floats held by reference_logits
};

// The chat template the grid's model entry asks for: its template file, a built-in name, or
// the one its weights carry (recognized by engine::load_chat_template).
engine::ChatTemplate chat_template_for(const orchestrator::ModelSpec& model);

// How a cell's prompts are rendered (GenerationSettings::system_prompt: absent = the template's
// default, "" = none, text = that text). A cell without generation settings (key_magnitudes)
// renders as a generation cell that sets no system prompt: the template's default, which is what
// transformers' apply_chat_template does with a lone user message (the paper's calibration code).
engine::ChatOptions chat_options_for(const orchestrator::Cell& cell);

// Answers a cell draws per prompt (GenerationSettings::samples; 1 without generation settings):
// cell index i is prompt i / samples of the cell's prompts.
std::int64_t samples_per_prompt(const orchestrator::Cell& cell);

// The cell's prompts (worker/cell_prompts.h), checked to reach cell index `end`: throws InputError
// naming the benchmark and data directory when there are fewer.
eval::Benchmark shard_prompts(const orchestrator::Cell& cell, std::int64_t end, const ShardExecutorOptions& options);

// refusal / over_refusal / ifeval: prompts [begin, end) rendered, generated in batches of the
// cell's batch size aligned to cell indices (batch k = prompts [k*bs, (k+1)*bs)), judged by the
// refusal judge (an ifeval refusal is an over-refusal: its prompts are benign) and, for ifeval,
// scored against each prompt's instructions (ShardResult::ifeval_verdicts).
// A speculative cell (GenerationSettings::speculative) generates each batch with
// engine::SpeculativeGenerator, `draft` proposing (the target's own engine::Model when it drafts
// for itself; required, and the same vocabulary as the target, checked by the caller), the
// cell's KV spec on the side(s) its `quantize` names; each row's judge_json then holds
// "speculative": {"draft_tokens", "rounds", "proposed", "accepted"}. `draft` is unused otherwise.
db::ShardResult run_generation_shard(LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                     std::int64_t end, const ShardExecutorOptions& options,
                                     const eval::RefusalJudge& judge, const ShardProgressCallback& on_progress,
                                     const engine::Model* draft = nullptr);

// ifeval: the answer to `prompt` (prompt_index in the cell) scored against each of its
// instructions (eval::ifeval::score_instructions): one row per instruction, in order. An
// instruction that cannot be scored gets a row without verdicts; bad instruction JSON throws.
std::vector<db::IfevalVerdictRow> ifeval_verdict_rows(const eval::Prompt& prompt, std::int64_t prompt_index,
                                                      std::string_view answer);

// perplexity: windows [begin, end) scored (eval/perplexity.h).
db::ShardResult run_perplexity_shard(LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                     std::int64_t end, const ShardExecutorOptions& options,
                                     const ShardProgressCallback& on_progress);

// key_magnitudes keeps a prompt's first 512 tokens (the paper's run_pcr_prediction.py tokenizes
// the calibration prompts with truncation at max_length 512).
inline constexpr std::int64_t kKeyMagnitudeMaxTokens = 512;

// max |K| per channel at every layer over the first kKeyMagnitudeMaxTokens of `ids` (all of them
// when fewer): one prefill of the prompt alone (batch 1) at full precision (no KV path, a fresh
// cache), the keys captured where the paper hooks k_proj (engine::CaptureKind::kKeyExact,
// pre-RoPE), the max taken in float32. One row per layer, in layer order, each with
// kv_heads * head_dim values and `tokens` = the tokens run. Throws InputError on an empty prompt.
std::vector<db::KeyMagnitudeRow> prompt_key_magnitudes(const engine::Model& model, std::span<const engine::TokenId> ids,
                                                       std::int64_t prompt_index);

// key_magnitudes: prompts [begin, end) rendered as the refusal cells render them (chat template,
// generation prompt added), each run through prompt_key_magnitudes; layers x prompts rows.
// Progress is reported per prompt.
db::ShardResult run_key_magnitude_shard(LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                        std::int64_t end, const ShardExecutorOptions& options,
                                        const ShardProgressCallback& on_progress);

// float64 [layers, hidden]: the residual stream after each layer (engine::CaptureKind::kResidual,
// HF hidden_states[layer + 1]) at the last of `ids`, from one prefill of the prompt alone
// (batch 1, a fresh cache) through `kv_path` (nullptr: full precision; a cache placement runs
// the last token as a decode step over the quantized history). Arditi et al. read the
// input of each block (resid_pre); resid_pre of layer l + 1 is this row at layer l, and the
// embedding (their layer 0) is left out because no KV quantizer can change it.
at::Tensor last_token_residuals(const engine::Model& model, std::span<const engine::TokenId> ids,
                                engine::KvPath* kv_path);

// refusal_direction: prompts [begin, end) rendered as the refusal cells render them, each run
// through last_token_residuals with the cell's KV path; per class present in the range, one
// db::DirectionSumRow per layer (harmful rows first). Progress is reported per prompt.
db::ShardResult run_refusal_direction_shard(LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                            std::int64_t end, const ShardExecutorOptions& options,
                                            const ShardProgressCallback& on_progress);

}  // namespace kvsafe::worker::detail
