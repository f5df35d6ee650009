#pragma once
// Private to worker/: what shard_executor.cpp hands to the per-task shard runners
// (shard_generation.cpp, shard_perplexity.cpp).

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/records.h"
#include "engine/model.h"
#include "eval/refusal_judge.h"
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

// refusal / over_refusal: prompts [begin, end) rendered, generated in batches of the cell's
// batch size aligned to cell indices (batch k = prompts [k*bs, (k+1)*bs)), judged.
db::ShardResult run_generation_shard(LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                     std::int64_t end, const ShardExecutorOptions& options,
                                     const eval::RefusalJudge& judge, const ShardProgressCallback& on_progress);

// perplexity: windows [begin, end) scored (eval/perplexity.h).
db::ShardResult run_perplexity_shard(LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                     std::int64_t end, const ShardExecutorOptions& options,
                                     const ShardProgressCallback& on_progress);

}  // namespace kvsafe::worker::detail
