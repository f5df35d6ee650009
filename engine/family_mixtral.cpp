// Mixtral: the Llama/Mistral attention with a sparse MoE MLP (router softmax in float32,
// top-2 experts, weights renormalized to sum 1; moe_mlp). models/mixtral/modeling_mixtral.py.

#include "engine/transformer_blocks.h"

#include "common/error.h"

namespace kvsafe::engine {

at::Tensor mixtral_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx) {
  KVSAFE_ASSERT(ctx.config->num_experts > 0 && !w.expert_w1.empty());
  return pre_norm_layer(w, layer, hidden, ctx, default_attention_options(*ctx.config, layer));
}

}  // namespace kvsafe::engine
