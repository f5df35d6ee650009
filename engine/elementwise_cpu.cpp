// rms_norm, apply_rope and the SwiGLU product (engine/elementwise.h) for float32 on the
// CPU: one pass per row instead of ATen's chain of small kernels.
//
// NOTE: why. On tensors this small (a decode step's rows) ATen's per-kernel overhead
// dominates: RMSNorm is six kernels (pow, mean, add, rsqrt, two muls) and RoPE five per tensor
// (narrow, neg, cat, two muls and an add), ~25 per layer, each on the calling thread while the
// pool's other threads wait (engine/README.md, "Measured"). The results equal ATen's to float
// rounding (the sum of squares runs in another order; the compiler may contract RoPE's
// multiply-add into an FMA).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>

#include "common/error.h"
#include "engine/elementwise.h"
#include "engine/lanes16.h"

namespace kvsafe::engine {
namespace {

// Rows per task: enough work to be worth waking a thread (a decode step's 32 x 576 stays on
// the calling thread; a prefill's thousands of rows spread).
std::int64_t row_grain(std::int64_t width) {
  return std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(1, width));
}

// silu(g) * u = g / (1 + e^-g) * u over n floats, sixteen at a time.
template <typename L>
[[gnu::always_inline]] inline void silu_mul_body(const float* g, const float* u, float* out, std::int64_t n) {
  using F = typename L::F;
  using lanes::load;
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const F x = load<F>(g + i);
    lanes::store(out + i, x / (1.0f + lanes::exp16<L>(-x)) * load<F>(u + i));
  }
  if (i < n) {
    alignas(64) float gt[16] = {}, ut[16] = {}, ot[16];
    std::copy(g + i, g + n, gt);
    std::copy(u + i, u + n, ut);
    const F x = load<F>(gt);
    lanes::store(ot, x / (1.0f + lanes::exp16<L>(-x)) * load<F>(ut));
    std::copy(ot, ot + (n - i), out + i);
  }
}

// RMSNorm of rows [begin, end). The sum of squares runs in sixteen lanes (a scalar chain of
// dependent adds was 2 ms of a 53 ms SmolLM2 batch-32 step, on the calling thread).
struct RmsNormArgs {
  const float* x;
  const float* weight;
  float* out;
  std::int64_t width;
  float eps;
};
template <typename L>
[[gnu::always_inline]] inline void rms_norm_rows_body(const RmsNormArgs& a, std::int64_t begin, std::int64_t end) {
  using F = typename L::F;
  using lanes::load;
  const std::int64_t full = a.width / 16 * 16;
  for (std::int64_t r = begin; r < end; ++r) {
    const float* row = a.x + r * a.width;
    F squares = F::zero();
    for (std::int64_t i = 0; i < full; i += 16) {
      const F v = load<F>(row + i);
      squares += v * v;
    }
    float sum = lanes::lane_sum(squares);
    for (std::int64_t i = full; i < a.width; ++i) sum += row[i] * row[i];
    // As HF: x * rsqrt(mean(x^2) + eps), then the weight.
    const float inverse = 1.0f / std::sqrt(sum / static_cast<float>(a.width) + a.eps);
    float* o = a.out + r * a.width;
    for (std::int64_t i = 0; i < full; i += 16) {
      lanes::store(o + i, load<F>(a.weight + i) * (load<F>(row + i) * inverse));
    }
    for (std::int64_t i = full; i < a.width; ++i) o[i] = a.weight[i] * (row[i] * inverse);
  }
}

// RoPE over rows [begin, end) of x [batch, heads, n, dim] (any strides but a unit last one)
// into the contiguous out: x * cos + rotate_half(x) * sin on the first `rotary` lanes,
// rotate_half(x) = (-x[half:], x[:half]); the rest copied.
struct RopeArgs {
  const float* x;
  std::int64_t xs0, xs1, xs2;  // x's strides
  const float* cos;            // [batch, n, rotary], contiguous
  const float* sin;
  float* out;
  std::int64_t heads, n, dim, rotary;
};

template <typename L>
[[gnu::always_inline]] inline void rope_rows_body(const RopeArgs& a, std::int64_t begin, std::int64_t end) {
  using F = typename L::F;
  using lanes::load;
  using lanes::store;
  const std::int64_t half = a.rotary / 2, full = half / 16 * 16;
  for (std::int64_t index = begin; index < end; ++index) {
    const std::int64_t b = index / (a.heads * a.n), h = index / a.n % a.heads, t = index % a.n;
    const float* in = a.x + b * a.xs0 + h * a.xs1 + t * a.xs2;
    const float* c = a.cos + (b * a.n + t) * a.rotary;
    const float* s = a.sin + (b * a.n + t) * a.rotary;
    float* o = a.out + index * a.dim;
    for (std::int64_t i = 0; i < full; i += 16) {
      const F first = load<F>(in + i), second = load<F>(in + half + i);
      store(o + i, first * load<F>(c + i) + -second * load<F>(s + i));
      store(o + half + i, second * load<F>(c + half + i) + first * load<F>(s + half + i));
    }
    for (std::int64_t i = full; i < half; ++i) {
      o[i] = in[i] * c[i] + -in[i + half] * s[i];
      o[i + half] = in[i + half] * c[i + half] + in[i] * s[i + half];
    }
    for (std::int64_t i = a.rotary; i < a.dim; ++i) o[i] = in[i];
  }
}
// One copy of each body per instruction set.
#define KVSAFE_ELEMENTWISE_COPIES(target, suffix, L)                                               \
  target void rms_norm_rows_##suffix(const RmsNormArgs& a, std::int64_t begin, std::int64_t end) { \
    rms_norm_rows_body<L>(a, begin, end);                                                          \
  }                                                                                                \
  target void rope_rows_##suffix(const RopeArgs& a, std::int64_t begin, std::int64_t end) {        \
    rope_rows_body<L>(a, begin, end);                                                              \
  }                                                                                                \
  target void silu_mul_##suffix(const float* g, const float* u, float* out, std::int64_t n) {      \
    silu_mul_body<L>(g, u, out, n);                                                                \
  }
KVSAFE_ELEMENTWISE_COPIES(, generic, lanes::GenericLanes)
KVSAFE_ELEMENTWISE_COPIES(KVSAFE_TARGET_AVX512, avx512, lanes::Avx512Lanes)
KVSAFE_ELEMENTWISE_COPIES(KVSAFE_TARGET_AVX2, avx2, lanes::Avx2Lanes)
#define KVSAFE_PICK(name) lanes::pick_copy<decltype(&name##_generic)>({name##_avx512, name##_avx2, name##_generic})
#undef KVSAFE_ELEMENTWISE_COPIES

}  // namespace

bool rms_norm_cpu_applies(const at::Tensor& x, const at::Tensor& weight) {
  return x.device().is_cpu() && weight.device().is_cpu() && x.scalar_type() == at::kFloat &&
         weight.scalar_type() == at::kFloat && x.dim() >= 1 && weight.dim() == 1 && weight.size(0) == x.size(-1);
}

at::Tensor rms_norm_cpu(const at::Tensor& x_in, const at::Tensor& weight_in, double eps) {
  KVSAFE_ASSERT(rms_norm_cpu_applies(x_in, weight_in));
  const at::Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
  at::Tensor out = at::empty_like(x);
  const std::int64_t width = x.size(-1), rows = width > 0 ? x.numel() / width : 0;
  const float* xd = x.data_ptr<float>();
  const float* wd = weight.data_ptr<float>();
  float* od = out.data_ptr<float>();
  const auto feps = static_cast<float>(eps);
  auto* rows_fn = KVSAFE_PICK(rms_norm_rows);
  at::parallel_for(0, rows, row_grain(width), [&](std::int64_t begin, std::int64_t end) {
    rows_fn({.x = xd, .weight = wd, .out = od, .width = width, .eps = feps}, begin, end);
  });
  return out;
}

bool apply_rope_cpu_applies(const at::Tensor& x, const RopeCosSin& rope) {
  return x.device().is_cpu() && rope.cos.device().is_cpu() && rope.sin.device().is_cpu() &&
         x.scalar_type() == at::kFloat && x.dim() == 4 && x.stride(3) == 1 && rope.cos.scalar_type() == at::kFloat &&
         rope.sin.scalar_type() == at::kFloat && rope.cos.dim() == 3 && rope.cos.size(0) == x.size(0) &&
         rope.cos.size(1) == x.size(2) && rope.cos.size(2) <= x.size(3) && rope.cos.size(2) % 2 == 0 &&
         rope.sin.sizes() == rope.cos.sizes();
}

at::Tensor apply_rope_cpu(const at::Tensor& x, const RopeCosSin& rope) {
  KVSAFE_ASSERT(apply_rope_cpu_applies(x, rope));
  const std::int64_t batch = x.size(0), heads = x.size(1), n = x.size(2), dim = x.size(3);
  const std::int64_t rotary = rope.cos.size(2);
  const at::Tensor cos = rope.cos.contiguous(), sin = rope.sin.contiguous();
  at::Tensor out = at::empty({batch, heads, n, dim}, x.options());  // contiguous, whatever x's strides
  const RopeArgs args{.x = x.data_ptr<float>(),
                      .xs0 = x.stride(0),
                      .xs1 = x.stride(1),
                      .xs2 = x.stride(2),
                      .cos = cos.data_ptr<float>(),
                      .sin = sin.data_ptr<float>(),
                      .out = out.data_ptr<float>(),
                      .heads = heads,
                      .n = n,
                      .dim = dim,
                      .rotary = rotary};
  auto* rows_fn = KVSAFE_PICK(rope_rows);
  // Sixteen lanes at a time: a decode step's q and k are hundreds of short rows a layer, and a
  // scalar loop over them was a visible share of the step.
  at::parallel_for(0, batch * heads * n, row_grain(dim),
                   [&](std::int64_t begin, std::int64_t end) { rows_fn(args, begin, end); });
  return out;
}

bool silu_mul_cpu_applies(const at::Tensor& g, const at::Tensor& u) {
  return g.device().is_cpu() && u.device().is_cpu() && g.scalar_type() == at::kFloat && u.scalar_type() == at::kFloat &&
         g.sizes() == u.sizes() && g.is_contiguous() && u.is_contiguous();
}

void silu_mul_span(const float* g, const float* u, float* out, std::int64_t n) {
  KVSAFE_PICK(silu_mul)(g, u, out, n);
}

at::Tensor silu_mul_cpu(const at::Tensor& g, const at::Tensor& u) {
  KVSAFE_ASSERT(silu_mul_cpu_applies(g, u));
  at::Tensor out = at::empty_like(g);
  const float* gd = g.data_ptr<float>();
  const float* ud = u.data_ptr<float>();
  float* od = out.data_ptr<float>();
  // Chunks of whole 16-lane vectors, so the bits do not depend on the split.
  const std::int64_t n = g.numel(), vectors = (n + 15) / 16;
  at::parallel_for(0, vectors, 1024, [&](std::int64_t begin, std::int64_t end) {
    const std::int64_t first = begin * 16, last = std::min(n, end * 16);
    silu_mul_span(gd + first, ud + first, od + first, last - first);
  });
  return out;
}

}  // namespace kvsafe::engine
