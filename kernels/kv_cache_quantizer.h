#pragma once
// Stateful serving-mode quantizer for one layer's K/V cache: the engine appends each
// forward call's keys and values (prefill, then one token per decode step) and reads the
// dequantized cache for attention. Window semantics are pack_cache's (kv_quant.h): keys of
// KIVI / per_channel flush whole blocks of R tokens, token-wise sides keep the last R
// tokens exact, so appending token by token gives exactly what quantizing the finished
// sequence block-wise gives. FP8 with fp8_scale calibrated computes the scale from the
// first append (vLLM calculate_kv_scales) and freezes it.
//
// NOTE: this reference keeps the exact history and re-derives the packed form on read;
// an incremental flush into a paged cache is the engine performance issue's job.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

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
  // dtype; padding positions hold their input unchanged.
  std::pair<at::Tensor, at::Tensor> read();

  std::int64_t tokens() const;  // positions appended so far (padding included)
  std::int64_t memory_bytes();  // packed keys + values, as PackedKv::memory_bytes
  float key_fp8_scale() const { return key_scale_; }
  float value_fp8_scale() const { return value_scale_; }

 private:
  void refresh();

  KvSideSpec key_;
  KvSideSpec value_;
  at::Tensor k_{}, v_{}, valid_{};  // exact history
  at::Tensor k_read_{}, v_read_{};
  std::int64_t memory_ = 0;
  float key_scale_ = 0.0f, value_scale_ = 0.0f;
  bool dirty_ = true;
};

}  // namespace kvsafe::kernels
