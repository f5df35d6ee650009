#pragma once
// The KV-cache quantizers the engine calls (tensor in, tensor out; engine-independent).
//
//   KvQuantSpec --resolve_side(spec, side, layer)--> KvSideSpec --> one of:
//   - placement projection (the paper's hooks, core/quantization.py):
//       fake_quantize_projection(x [batch, tokens, channels], side)  -- every call
//       fake_quantize_fused_qkv(qkv [batch, tokens, q + 2*kv], ...)  -- Phi-3 style
//     Statistics span the whole call (batch and padding included), exactly as the paper.
//   - placement cache (serving systems): statistics per sequence and KV head, padding
//     excluded, packed storage:
//       pack_cache(x [batch, heads, tokens, head_dim], valid [batch, tokens], side) -> PackedKv
//       unpack_cache(PackedKv) -> [batch, heads, tokens, head_dim]
//       fake_quantize_cache(...) == unpack_cache(pack_cache(...)), bit for bit
//     and the stateful KvCacheQuantizer (kv_cache_quantizer.h) for prefill + decode.
//
// Every function refuses NaN/Inf input with InputError (quantizing them would silently
// poison whole groups) and throws InputError for shapes the scheme cannot take.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "kernels/group_codec.h"
#include "kernels/kv_quant_spec.h"

namespace kvsafe::kernels {

// ---- paper mode -------------------------------------------------------------------------

// The paper's quantize_tensor on one tensor, literally: torch ops in x's dtype, in its
// order (qmin/qmax, per_tensor sym early return below 1e-10, scale clamp 1e-8, round half
// to even, zero-padded groups). bits >= 16 returns x. x: [..., channels].
at::Tensor paper_fake_quantize(const at::Tensor& x, int bits, bool symmetric, Granularity granularity, int group_size);

// One projection output through `side` (from resolve_side with placement projection):
// int sides use paper_fake_quantize (with the KVQuantizerDual single-token fallback and
// channel selection: quantize_channels, or every channel but explicit outliers); fp8 and
// llama.cpp sides run their codec on rows of `channels` (fp8 elementwise, ggml blocks of 32
// along channels). kNone returns x. `mse` (optional) receives F.mse_loss(out, x), as the
// paper records per call. x: [batch, tokens, channels] (any leading dims; tokens = dim -2).
at::Tensor fake_quantize_projection(const at::Tensor& x, const KvSideSpec& side, double* mse = nullptr,
                                    float fp8_scale = 1.0f);

// Fused QKV projection (Phi-3.5): quantizes the K slice [q_size, q_size + kv_size) and the
// V slice [q_size + kv_size, q_size + 2*kv_size) of the last dim; Q is untouched. `mse`:
// over K and V together (the paper's fused hook). qkv: [batch, tokens, q_size + 2*kv_size].
at::Tensor fake_quantize_fused_qkv(const at::Tensor& qkv, std::int64_t q_size, std::int64_t kv_size,
                                   const KvSideSpec& key, const KvSideSpec& value, double* mse = nullptr);

// Outlier channels by calibration magnitude: the `count` channels of largest absmax
// (ties: lower id first), sorted. absmax: [channels].
std::vector<int> top_k_channels(const at::Tensor& absmax, int count);

// ---- serving mode -----------------------------------------------------------------------

// vLLM's calibrated FP8 scale (calculate_kv_scales): max|x| / 200 for keys, / 100 for
// values, in float32; 1.0 when x is all zeros (a zero scale would divide by zero).
float fp8_calibrated_scale(const at::Tensor& x, KvSide side);

struct CacheQuantOptions {
  float fp8_scale = 0.0f;  // > 0: this per-tensor scale; 0: 1.0 for fp8_scale unit (calibrated needs > 0)
};

// Packed form of one side of one layer's cache. Groups never mix sequences, heads or
// padding. What is not quantized (padding, the residual window, kept-exact channels, an
// incomplete key block) is stored exactly.
struct PackedKv {
  CodecParams params{};                   // codec, bits, group_len, n_groups
  at::Tensor codes{};                     // uint8 [n_groups, codes_bytes(params)]
  at::Tensor scales{};                    // uint8 [n_groups * scale_bytes(params)] (fp16 bits or float)
  at::Tensor zeros{};                     // uint8 [n_groups * zero_bytes(params)]
  at::Tensor group_index{};               // int64 [n_groups, group_len]: flat offsets into the 4-d tensor
  at::Tensor exact_index{};               // int64 [n_exact]: flat offsets stored exactly
  at::Tensor exact_values{};              // [n_exact], the input dtype
  std::vector<std::int64_t> shape{};      // [batch, heads, tokens, head_dim]
  at::ScalarType dtype = at::kFloat;      // the input dtype; unpack returns it
  std::int64_t valid_exact_elements = 0;  // exact elements that are real tokens (not padding)
  std::int64_t valid_tokens = 0;          // real tokens over the batch

  // Bytes a serving cache would hold: codes + scales + zeros + exact real-token elements at
  // 2 bytes (fp16/bf16). Per token: memory_bytes() / valid_tokens.
  std::int64_t memory_bytes() const;
};

// x: [batch, heads, tokens, head_dim] float32/bf16/fp16; valid: bool [batch, tokens] (true
// = real token), undefined = all real. Token order is the sequence order of the valid
// tokens (left or right padding alike). Windows (residual R, key group G):
//   token-wise sides (per_token, per_group, fp8, llama.cpp, kivi values): the last R valid
//     tokens of each sequence stay exact;
//   token-grouped sides (per_channel in the cache, kivi keys): valid tokens are quantized
//     in blocks of G along tokens, only in whole flushes of F = (R > 0 ? R : G) tokens;
//     the remainder stays exact (KIVI's key residual).
PackedKv pack_cache(const at::Tensor& x, const at::Tensor& valid, const KvSideSpec& side,
                    const CacheQuantOptions& options = {});
at::Tensor unpack_cache(const PackedKv& packed);
at::Tensor fake_quantize_cache(const at::Tensor& x, const at::Tensor& valid, const KvSideSpec& side,
                               const CacheQuantOptions& options = {});

// The codec a side uses in the cache (int sym/asym, kivi -> asym, fp8, ggml).
Codec codec_for(const KvSideSpec& side);

// Throws InputError when x holds NaN or Inf, naming `what`.
void check_finite(const at::Tensor& x, const char* what);

}  // namespace kvsafe::kernels
