#pragma once
// The attention op of every family's attention block (engine/transformer_blocks.h): its
// dispatch and ATen reference (attention_core.cpp) and the float32 CPU kernel
// (attention_core_cpu.cpp). A device kernel joins as attention_core_cuda.cu with the same
// signature, checked against the reference.

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace kvsafe::engine {

// Scaled dot-product attention with GQA, soft-capping and a mask, after RoPE:
//   q: [batch, heads, n, head_dim]; keys, values: [batch, kv_heads, total, head_dim] (any
//   strides); allowed: bool [batch, 1, n, total] (every row allows at least one key).
// Returns [batch, heads, n, head_dim]: softmax(mask(cap(q k^T * scale))) v, softmax in float32.
// attention_core() picks attention_core_cpu() (attention_core_cpu.cpp) for float32
// CPU calls and attention_core_reference() (ATen matmuls) otherwise; the two agree to float
// rounding (tests/engine/attention_core_test.cpp). attention_core_cpu runs vector loops over
// the cache for calls of at most kDecodeAttentionMaxTokens query tokens (decode steps) and
// BLAS products otherwise.
inline constexpr std::int64_t kDecodeAttentionMaxTokens = 4;
at::Tensor attention_core(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                          const at::Tensor& allowed, double scale, double softcap);
at::Tensor attention_core_reference(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                                    const at::Tensor& allowed, double scale, double softcap);
at::Tensor attention_core_cpu(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                              const at::Tensor& allowed, double scale, double softcap);

}  // namespace kvsafe::engine
