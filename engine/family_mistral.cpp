// Mistral: the Llama layer with a sliding attention window on every layer when the config
// sets one (v0.1: 4096; v0.2+: none). The window is the mask CallContext::allowed_window:
// a query at slot i sees keys at slots j with i - window < j <= i, as transformers'
// _prepare_4d_causal_attention_mask_with_cache_position does. models/mistral/modeling_mistral.py.

#include "engine/transformer_blocks.h"

namespace kvsafe::engine {

at::Tensor mistral_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx) {
  return pre_norm_layer(w, layer, hidden, ctx, default_attention_options(*ctx.config, layer));
}

}  // namespace kvsafe::engine
