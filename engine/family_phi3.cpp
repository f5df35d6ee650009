// Phi-3 / Phi-3.5: the Llama layer; the checkpoint's fused qkv_proj and gate_up_proj are split
// at load (WeightsLoader: gate = first half), and RoPE uses "longrope" (short factors up to
// the original context, long beyond, cos/sin scaled; make_rope_tables). The KV path is told
// the projections were fused (the paper hooks the fused output). models/phi3/modeling_phi3.py.

#include "engine/transformer_blocks.h"

namespace kvsafe::engine {

at::Tensor phi3_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx) {
  AttentionOptions options = default_attention_options(*ctx.config, layer);
  options.fused_qkv = true;
  return pre_norm_layer(w, layer, hidden, ctx, options);
}

}  // namespace kvsafe::engine
