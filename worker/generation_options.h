#pragma once
// A generation cell's decoding options for the engine (issue 20 item 2): the grid's settings,
// the model folder's generation_config.json when the grid asks for it
// (generation.generation_config: model, the paper profile's default, as transformers' generate()
// applies it), and the grid's explicit repetition_penalty / top_k over both.
//   stop tokens         EOS and the chat formats' end tokens (engine::default_stop_tokens), plus
//                       the file's eos_token_id list
//   repetition_penalty  grid, else the file's, else none (1.0); greedy decoding too
//   top_k (sampling)    grid, else the file's, else transformers' default 50; greedy: unused
//   pad_id              the tokenizer's pad token under pad_token: tokenizer, else EOS (0 without)
//   padding_queries     zero under padding_queries: zero, else attend_all
// temperature, top_p and the seed are always the grid's (it states them; the paper is greedy).

#include "engine/generator.h"
#include "modelfile/generation_config.h"
#include "orchestrator/grid_spec.h"
#include "text/tokenizer.h"

namespace kvsafe::worker {

// transformers' GenerationConfig.top_k when a model's file sets none.
inline constexpr std::int64_t kTransformersDefaultTopK = 50;

engine::GenerationOptions generation_options(const orchestrator::GenerationSettings& settings,
                                             const engine::Tokenizer& tokenizer,
                                             const engine::GenerationConfig& model_config);

}  // namespace kvsafe::worker
