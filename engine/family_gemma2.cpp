// Gemma-2: pre and post norms around both blocks (RMSNorm x̂ * (1 + w); the loader already
// returns 1 + w), GeGLU (gelu tanh), attention scores scaled by query_pre_attn_scalar^-1/2
// and soft-capped by tanh, a sliding window on even layers, embeddings scaled by
// sqrt(hidden) and final logits soft-capped (both in Model::forward).
// models/gemma2/modeling_gemma2.py.

#include "engine/transformer_blocks.h"

namespace kvsafe::engine {

at::Tensor gemma2_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx) {
  const ModelConfig& c = *ctx.config;
  const double eps = c.rms_norm_eps;
  const at::Tensor attn =
      attention_block(w, layer, rms_norm(hidden, w.input_norm, eps), ctx, default_attention_options(c, layer));
  const at::Tensor h = hidden.add(rms_norm(attn, w.post_attention_norm, eps));
  const at::Tensor mlp =
      gated_mlp(rms_norm(h, w.pre_feedforward_norm, eps), w.gate_proj, w.up_proj, w.down_proj, c.hidden_act);
  return h.add(rms_norm(mlp, w.post_feedforward_norm, eps));
}

}  // namespace kvsafe::engine
