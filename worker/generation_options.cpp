#include "worker/generation_options.h"

#include <algorithm>

namespace kvsafe::worker {

engine::GenerationOptions generation_options(const orchestrator::GenerationSettings& settings,
                                             const engine::Tokenizer& tokenizer,
                                             const engine::GenerationConfig& model_config) {
  engine::GenerationOptions gen;
  gen.max_new_tokens = settings.max_new_tokens;
  gen.batch_size = settings.batch_size;
  gen.temperature = settings.temperature;
  gen.top_p = settings.top_p;
  gen.stop_tokens = engine::default_stop_tokens(tokenizer);
  // transformers' convention for a tokenizer without a pad token (the paper's code): pad = eos.
  // Padding slots are masked; a stopped sequence is fed this token.
  const std::optional<engine::TokenId> pad =
      settings.tokenizer_pad && tokenizer.pad_id() ? tokenizer.pad_id() : tokenizer.eos_id();
  gen.pad_id = pad.value_or(0);
  gen.padding_queries =
      settings.zero_padding_queries ? engine::PaddingQueries::kZero : engine::PaddingQueries::kAttendAll;
  const bool use = settings.use_generation_config;
  if (use) {
    for (const std::int64_t id : model_config.eos_token_ids)
      gen.stop_tokens.push_back(static_cast<engine::TokenId>(id));
    std::sort(gen.stop_tokens.begin(), gen.stop_tokens.end());
    gen.stop_tokens.erase(std::unique(gen.stop_tokens.begin(), gen.stop_tokens.end()), gen.stop_tokens.end());
  }
  if (settings.repetition_penalty) {
    gen.repetition_penalty = *settings.repetition_penalty;
  } else if (use && model_config.repetition_penalty) {
    gen.repetition_penalty = *model_config.repetition_penalty;
  }
  if (settings.temperature > 0) {
    if (settings.top_k) {
      gen.top_k = *settings.top_k;
    } else if (use) {
      gen.top_k = model_config.top_k.value_or(kTransformersDefaultTopK);
    }
  }
  return gen;
}

}  // namespace kvsafe::worker
