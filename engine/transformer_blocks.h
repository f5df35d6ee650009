#pragma once
// Internal to engine/: the building blocks every family's layer is made of (RMSNorm, RoPE,
// attention with GQA / masks / sliding window / soft-capping and the KV path, gated MLPs,
// top-k MoE), the loaded weights, and the per-call context. Family files
// (engine/family_*.cpp) compose them; nothing here is copied per family.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/activation_capture.h"
#include "engine/attention_core.h"
#include "engine/elementwise.h"
#include "engine/kv_cache.h"
#include "engine/kv_path.h"
#include "engine/quantized_panels.h"
#include "modelfile/model_config.h"

namespace kvsafe::engine {

// A linear layer's weight as linear_t() applies it. float32 on the CPU: packed once at load
// into column panels (engine/packed_gemm.h; a decode step reads each panel from memory once
// and reuses it from cache for every row), and a GGUF q4_0 / q4_1 / q8_0 matrix is kept in
// its blocks (engine/quantized_panels.h), expanded to the same floats as it is multiplied.
// Other devices and dtypes: transposed [in, out] contiguous for ATen's matmul.
struct Matrix {
  at::Tensor panels;  // float32 CPU: packed_bytes(format, in, out) bytes (float or uint8), else undefined
  PanelFormat format = PanelFormat::kFloat32;
  at::Tensor weight_t;  // otherwise: [in, out] contiguous, else undefined
  std::int64_t in = 0, out = 0;
};

// Packs or transposes w ([out, in], the checkpoint's layout) for linear_t(); the result is on
// w's device in w's dtype.
Matrix make_matrix(const at::Tensor& w);

// A float32 CPU matrix kept quantized: `blocks` are its [out, in] rows as ggml blocks of
// `format`, `w` the same matrix dequantized ([out, in] float32 CPU). nullopt when a weight
// would not expand to exactly w's bits, in the reference expansion or in the packed kernels
// this CPU runs, or when the blocks do not fit w's shape (the caller then packs w with
// make_matrix).
std::optional<Matrix> make_quantized_matrix(PanelFormat format, std::span<const std::byte> blocks, const at::Tensor& w);

// One decoder layer's tensors; absent ones stay undefined.
struct LayerWeights {
  at::Tensor input_norm, post_attention_norm, pre_feedforward_norm, post_feedforward_norm;
  Matrix q_proj, k_proj, v_proj, o_proj;
  at::Tensor q_bias, k_bias, v_bias;
  at::Tensor q_norm, k_norm;  // OLMo-2: over all heads
  Matrix gate_proj, up_proj, down_proj;
  Matrix router;                                        // MoE gate [experts, hidden]
  std::vector<Matrix> expert_w1, expert_w2, expert_w3;  // MoE: gate, down, up per expert
};

struct ModelWeights {
  at::Tensor embed;       // [vocab, hidden]; undefined when tied (rows are read from lm_head)
  at::Tensor final_norm;  // [hidden]
  Matrix lm_head;         // [hidden -> vocab] (the embedding when tied)
  std::vector<LayerWeights> layers;
};

// x @ W^T (+ bias), what at::linear(x, W, bias) computes, with the same bits at every thread
// count and for every batch composition on the CPU (a row's result does not depend on the
// other rows). x: [..., in]; bias: [out] or undefined. With a residual ([..., out], the shape
// of the result) the result is residual + at::linear(x, W, bias), the same bits as that add.
// float32 on the CPU runs the packed kernels (engine/packed_gemm.h) split over ATen's pool,
// the residual added as each block of the product is stored; other calls run ATen's matmul.
at::Tensor linear_t(const at::Tensor& x, const Matrix& w, const at::Tensor& bias = {}, const at::Tensor& residual = {});

// Several linear_t() of one input (q, k and v; gate and up), in one parallel region on the
// CPU; the same bits as separate calls. Returns one output per entry, in order.
struct LinearWeights {
  const Matrix* matrix = nullptr;
  at::Tensor bias;      // [out] or undefined
  at::Tensor residual;  // [..., out] or undefined (linear_t)
};
std::vector<at::Tensor> linear_t_group(const at::Tensor& x, std::span<const LinearWeights> weights);

// The embedding rows of `tokens` (int64 [batch, n]) -> [batch, n, hidden].
at::Tensor embed_tokens(const ModelWeights& weights, const at::Tensor& tokens);

// RoPE frequencies of one model (float32 [rotary_dim / 2]) and their scaling.
struct RopeTables {
  at::Tensor inv_freq;            // default / linear / llama3 / freq-factor scaled
  at::Tensor inv_freq_long;       // longrope beyond the original context (else undefined)
  std::int64_t original_max = 0;  // longrope switch point
  double attention_factor = 1.0;  // longrope magnitude scaling of cos and sin
};
RopeTables make_rope_tables(const ModelConfig& config, c10::Device device);

// cos and sin, float32 -> dtype, [batch, n, rotary_dim], for int64 positions [batch, n]
// (RopeCosSin: engine/elementwise.h).
RopeCosSin rope_cos_sin(const RopeTables& tables, std::int64_t rotary_dim, const at::Tensor& positions,
                        at::ScalarType dtype);
// x: [batch, heads, n, head_dim]; rotates the first rotary_dim dims (rotate_half pairs).
at::Tensor apply_rope(const at::Tensor& x, const RopeCosSin& rope);

// HF RMSNorm: float32 math, weight multiplied in float32, result cast back to x's dtype.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// The call-wide state every layer reads.
struct CallContext {
  const ModelConfig* config = nullptr;
  KvCache* cache = nullptr;
  KvPath* path = nullptr;                // cache->path(), possibly null
  ActivationCapture* capture = nullptr;  // null = no capture
  KvCallLog* kv_log = nullptr;           // null = no MSE records
  RopeCosSin rope;                       // for this call's positions
  RopeCosSin key_rope;                   // for every slot's position (pre-RoPE key caches only)
  at::Tensor valid_new;                  // bool [batch, n]
  at::Tensor allowed;                    // bool [batch, 1, n, total]: causal + valid keys
  at::Tensor allowed_window;             // same with the sliding window (undefined if none)
  at::Tensor zero_rows;                  // bool [batch, n, 1]: attention output zeroed (PaddingQueries::kZero)
  bool prefill = false;                  // the cache was empty before this call
};

// Per-layer attention settings a family chooses.
struct AttentionOptions {
  bool sliding = false;    // use CallContext::allowed_window
  double scale = 0.0;      // scores multiplier (1/sqrt(head_dim) or Gemma's scalar)
  double softcap = 0.0;    // tanh cap on scores; 0 = off
  bool qk_norm = false;    // OLMo-2 RMSNorm over the full q / k projections
  bool fused_qkv = false;  // the checkpoint fused q/k/v (KvProjectionCall::fused_qkv)
};

// The attention block: projections (+bias), KV path, RoPE, cache, GQA attention, o_proj.
// x: [batch, n, hidden] (already normed). Returns [batch, n, hidden]; with a residual
// ([batch, n, hidden]), residual + the block's output (linear_t adds it in o_proj).
at::Tensor attention_block(const LayerWeights& w, std::int64_t layer, const at::Tensor& x, CallContext& ctx,
                           const AttentionOptions& options, const at::Tensor& residual = {});

// Gated MLP down(act(gate(x)) * up(x)); act: "silu", "gelu_pytorch_tanh" or "gelu". With a
// residual, residual + that (added in the down projection, linear_t).
at::Tensor gated_mlp(const at::Tensor& x, const Matrix& gate, const Matrix& up, const Matrix& down,
                     const std::string& act, const at::Tensor& residual = {});
// Mixtral's sparse MoE: softmax router in float32, top-k, renormalized weights.
at::Tensor moe_mlp(const LayerWeights& w, const at::Tensor& x, std::int64_t top_k, const std::string& act);

// Records x [batch, n, width] when the capture wants it.
inline void capture_if(CallContext& ctx, CaptureKind kind, std::int64_t layer, const at::Tensor& x) {
  if (ctx.capture != nullptr && ctx.capture->wants(kind, layer)) ctx.capture->record(kind, layer, x);
}

// The default attention settings of `config` at `layer` (window, scale, cap, qk-norm).
AttentionOptions default_attention_options(const ModelConfig& config, std::int64_t layer);

// One decoder layer of a family: hidden [batch, n, hidden] in, same out.
using LayerFunction = at::Tensor (*)(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden,
                                     CallContext& ctx);

// Each family file defines one (engine/family_*.cpp).
at::Tensor llama_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx);
at::Tensor mistral_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx);
at::Tensor qwen2_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx);
at::Tensor phi3_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx);
at::Tensor gemma2_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx);
at::Tensor mixtral_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx);
at::Tensor olmo2_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx);

// The pre-norm layer shared by Llama, Mistral, Qwen2 and Phi-3:
// h = x + attn(norm(x)); h + mlp(norm(h)).
at::Tensor pre_norm_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx,
                          const AttentionOptions& options);

}  // namespace kvsafe::engine
