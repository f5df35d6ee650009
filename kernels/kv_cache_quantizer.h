#pragma once
// Stateful serving-mode quantizer for one layer's K/V cache: the engine appends each
// forward call's keys and values (prefill, then one token per decode step) and reads the
// dequantized cache for attention. Window semantics are pack_cache's (kv_quant.h): keys of
// KIVI / per_channel flush whole blocks of R tokens, token-wise sides keep the last R
// tokens exact, so appending token by token gives exactly what quantizing the finished
// sequence block-wise gives. FP8 with fp8_scale calibrated computes the scale from the
// first append (vLLM calculate_kv_scales) and freezes it.
//
// Incremental: every group is quantized exactly once, when it leaves the exact window (a
// token-wise row when it falls out of the last R tokens, a token-grouped key block when its
// flush completes), and its codes are never touched again. An append costs O(new tokens)
// amortized (plus O(F) for a completed key flush); storage grows by doubling, as
// engine::ExactKvStore. The cache holds the dequantized values attention reads (exact
// window included) next to the packed codes a serving cache would keep.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/kv_quant.h"

namespace kvsafe::kernels {

class KvCacheQuantizer {
 public:
  // `key`/`value`: resolve_side(spec, kKey|kValue, layer); placement must be cache.
  KvCacheQuantizer(KvSideSpec key, KvSideSpec value);

  // k, v: [batch, kv_heads, new_tokens, head_dim]; valid: bool [batch, new_tokens] (true =
  // real token; undefined = all real). Batch, heads and head_dim must match earlier calls.
  void append(const at::Tensor& k, const at::Tensor& v, const at::Tensor& valid = {});

  // Dequantized keys and values [batch, kv_heads, tokens_so_far, head_dim] in the input
  // dtype; padding positions hold their input unchanged. Views of the cache's storage: valid
  // until the next append (which may rewrite slots leaving the exact window).
  std::pair<at::Tensor, at::Tensor> read();

  std::int64_t tokens() const;  // positions appended so far (padding included)
  std::int64_t memory_bytes();  // packed keys + values, as PackedKv::memory_bytes
  float key_fp8_scale() const { return key_scale_; }
  float value_fp8_scale() const { return value_scale_; }
  // Codec groups quantized so far, keys + values. Each group is quantized once, so after
  // any sequence of appends this equals the n_groups of pack_cache on the whole history.
  std::int64_t quantized_groups() const;

 private:
  // One side's storage (kv_cache_quantizer.cpp).
  class Side {
   public:
    Side() = default;
    explicit Side(KvSideSpec spec) : spec_(std::move(spec)) {}
    // Starts the storage from the first append (fixes shape, dtype, device, fp8 scale).
    void start(const at::Tensor& x, float fp8_scale);
    // Appends x [batch, heads, n, head_dim] whose valid tokens are listed per sequence.
    void append(const at::Tensor& x, const std::vector<std::vector<std::int64_t>>& new_valid);
    at::Tensor read() const;
    std::int64_t memory_bytes() const;
    std::int64_t groups() const { return groups_; }
    const KvSideSpec& spec() const { return spec_; }

   private:
    void quantize_rows(std::int64_t b, std::int64_t first, std::int64_t last);

    KvSideSpec spec_{};
    CodecParams params_{};
    at::Tensor channels_{};                                   // int64 [dq] quantized channels
    bool all_channels_ = false;                               // channels_ is every channel
    at::Tensor cache_{};                                      // [batch, heads, capacity, head_dim], what read() shows
    std::vector<std::vector<std::int64_t>> valid_{};          // per sequence: valid token positions in order
    std::vector<std::int64_t> quantized_{};                   // per sequence: leading valid tokens quantized
    std::vector<std::uint8_t> codes_{}, scales_{}, zeros_{};  // packed groups, in quantization order
    std::int64_t dq_ = 0;                                     // quantized channels per head
    std::int64_t tokens_ = 0, valid_tokens_ = 0, groups_ = 0;
  };

  Side key_, value_;
  bool started_ = false;  // after the first append
  float key_scale_ = 0.0f, value_scale_ = 0.0f;
};

}  // namespace kvsafe::kernels
