// OLMo-2: norms after the blocks only (x + norm(attn(x)); h + norm(mlp(h))) and RMSNorm on
// the full q and k projections (over all heads) before RoPE. The paper's k_proj hook sits
// before that k_norm. models/olmo2/modeling_olmo2.py.

#include "engine/transformer_blocks.h"

namespace kvsafe::engine {

at::Tensor olmo2_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx) {
  const ModelConfig& c = *ctx.config;
  const double eps = c.rms_norm_eps;
  const at::Tensor attn = attention_block(w, layer, hidden, ctx, default_attention_options(c, layer));
  const at::Tensor h = hidden.add(rms_norm(attn, w.post_attention_norm, eps));
  const at::Tensor mlp = gated_mlp(h, w.gate_proj, w.up_proj, w.down_proj, c.hidden_act);
  return h.add(rms_norm(mlp, w.post_feedforward_norm, eps));
}

}  // namespace kvsafe::engine
