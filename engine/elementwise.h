#pragma once
// The one-pass elementwise ops of the transformer blocks (engine/transformer_blocks.h) for
// float32 on the CPU: RMSNorm, RoPE and SwiGLU's silu(g) * u (elementwise_cpu.cpp). Each has
// an `_applies` test; the blocks call ATen's version (the reference) where it fails.

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace kvsafe::engine {

// RoPE's cos and sin, float32 -> dtype, [batch, n, rotary_dim] (rope_cos_sin).
struct RopeCosSin {
  at::Tensor cos, sin;
};
// rms_norm, apply_rope and SwiGLU's silu(g) * u for float32 on the CPU, one pass per row
// (elementwise_cpu.cpp); equal to the ATen versions to float rounding. apply_rope_cpu
// returns a contiguous tensor.
bool rms_norm_cpu_applies(const at::Tensor& x, const at::Tensor& weight);
at::Tensor rms_norm_cpu(const at::Tensor& x, const at::Tensor& weight, double eps);
bool apply_rope_cpu_applies(const at::Tensor& x, const RopeCosSin& rope);
at::Tensor apply_rope_cpu(const at::Tensor& x, const RopeCosSin& rope);
// at::silu(g) * u (SwiGLU), to float rounding, g and u contiguous of one shape.
bool silu_mul_cpu_applies(const at::Tensor& g, const at::Tensor& u);
at::Tensor silu_mul_cpu(const at::Tensor& g, const at::Tensor& u);
// The same over n floats (out may be u): each element's bits do not depend on n or on where
// the span starts, so pieces of a row give what silu_mul_cpu gives for the whole.
void silu_mul_span(const float* g, const float* u, float* out, std::int64_t n);

}  // namespace kvsafe::engine
