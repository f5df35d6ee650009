// Qwen2 / Qwen2.5: the Llama layer with biases on q/k/v (none on o_proj); the biases are
// part of the k_proj / v_proj outputs the paper's hooks see. Qwen2's optional sliding window
// (use_sliding_window, off in the released models) is not modelled per layer.
// models/qwen2/modeling_qwen2.py.

#include "engine/transformer_blocks.h"

namespace kvsafe::engine {

at::Tensor qwen2_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx) {
  return pre_norm_layer(w, layer, hidden, ctx, default_attention_options(*ctx.config, layer));
}

}  // namespace kvsafe::engine
