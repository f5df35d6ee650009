// Llama family (Llama-2/3/3.1, SmolLM2, DeepSeek-LLM-7B, Yi): pre-norm layers, RoPE with
// linear or "llama3" scaling (make_rope_tables), GQA, SwiGLU; tied or untied embeddings
// are settled at load. transformers: models/llama/modeling_llama.py.

#include "engine/transformer_blocks.h"

namespace kvsafe::engine {

at::Tensor llama_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx) {
  return pre_norm_layer(w, layer, hidden, ctx, default_attention_options(*ctx.config, layer));
}

}  // namespace kvsafe::engine
