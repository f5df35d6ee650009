// engine/elementwise_cpu.cpp and engine/lanes16.h: the one-pass CPU versions of RMSNorm, RoPE
// and SwiGLU's silu(g) * u against the ATen expressions they replace (which still run on other
// devices and dtypes), and the vector exp the CPU softmax and SiLU use.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/lanes16.h"
#include "engine/transformer_blocks.h"
#include "tests/testing/cpu_copies.h"

namespace kvsafe::engine {
namespace {

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// Each copy of the one-pass kernels (AVX-512, AVX2, generic), whichever CPU the tests run on.
class ElementwiseCpuCopy : public kvsafe::testing::CpuCopyTest {};

TEST_P(ElementwiseCpuCopy, RmsNormEqualsHfFormula) {
  at::manual_seed(1);
  // Widths with and without a tail past a multiple of 16; a strided (transposed) input.
  for (const std::int64_t width : {576, 64, 17, 8}) {
    const at::Tensor x = at::randn({3, 5, width}) * 3, weight = at::randn({width});
    ASSERT_TRUE(rms_norm_cpu_applies(x, weight));
    const at::Tensor want = weight * (x * at::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + 1e-5));
    const at::Tensor got = rms_norm(x, weight, 1e-5);
    EXPECT_LT(max_abs(got, want), 1e-5) << width;
    EXPECT_EQ(got.sizes(), x.sizes());
    const at::Tensor strided = x.transpose(0, 1);
    const at::Tensor want_strided = weight * (strided * at::rsqrt(strided.pow(2).mean(-1, /*keepdim=*/true) + 1e-5));
    EXPECT_LT(max_abs(rms_norm(strided, weight, 1e-5), want_strided), 1e-5) << width << ", strided";
  }
  // A row of zeros gives zeros (eps keeps the rsqrt finite).
  const at::Tensor zeros = at::zeros({2, 32});
  EXPECT_TRUE(at::equal(rms_norm(zeros, at::ones({32}), 1e-6), zeros));
}

TEST_P(ElementwiseCpuCopy, RopeEqualsRotateHalfFormula) {
  at::manual_seed(2);
  // Full rotary (Llama) and partial rotary (Phi-3 style); x a transposed view of
  // [batch, n, heads, dim] as attention_block passes it. Halves of 16 and 32 lanes are whole
  // vectors (SmolLM2's head_dim 64), 12 only the scalar tail, 24 both.
  struct Case {
    std::int64_t dim, rotary;
  };
  for (const Case c : {Case{32, 32}, Case{32, 24}, Case{64, 64}, Case{64, 48}}) {
    const std::int64_t batch = 2, n = 3, heads = 4, dim = c.dim, rotary = c.rotary;
    const at::Tensor x = at::randn({batch, n, heads, dim}).transpose(1, 2);
    const RopeCosSin rope{.cos = at::randn({batch, n, rotary}), .sin = at::randn({batch, n, rotary})};
    ASSERT_TRUE(apply_rope_cpu_applies(x, rope));
    const at::Tensor cos = rope.cos.unsqueeze(1), sin = rope.sin.unsqueeze(1);
    const at::Tensor rot = x.narrow(-1, 0, rotary), pass = x.narrow(-1, rotary, dim - rotary);
    const std::int64_t half = rotary / 2;
    const at::Tensor rotated = at::cat({-rot.narrow(-1, half, half), rot.narrow(-1, 0, half)}, -1);
    const at::Tensor want = at::cat({rot * cos + rotated * sin, pass}, -1);
    const at::Tensor got = apply_rope(x, rope);
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_LT(max_abs(got, want), 1e-5) << rotary;
    EXPECT_TRUE(at::equal(got.narrow(-1, rotary, dim - rotary), pass)) << "pass-through dims are copied";
  }
}

TEST(ElementwiseCpu, InputsTheCpuVersionsDoNotTakeGoThroughAten) {
  // RoPE tables for one sequence broadcast over a batch of two: ATen's path, same formula.
  at::manual_seed(4);
  const at::Tensor x = at::randn({2, 3, 4, 16});
  const RopeCosSin one{.cos = at::randn({1, 4, 16}), .sin = at::randn({1, 4, 16})};
  EXPECT_FALSE(apply_rope_cpu_applies(x, one));
  const RopeCosSin two{.cos = one.cos.expand({2, 4, 16}).contiguous(), .sin = one.sin.expand({2, 4, 16}).contiguous()};
  ASSERT_TRUE(apply_rope_cpu_applies(x, two));
  EXPECT_LT(max_abs(apply_rope(x, one), apply_rope(x, two)), 1e-5);
  // float64 stays on ATen.
  const at::Tensor d = at::randn({2, 8}, at::kDouble);
  EXPECT_FALSE(rms_norm_cpu_applies(d, at::ones({8}, at::kDouble)));
  EXPECT_EQ(rms_norm(d, at::ones({8}, at::kDouble), 1e-6).scalar_type(), at::kDouble);
  EXPECT_FALSE(silu_mul_cpu_applies(d, d));
}

TEST_P(ElementwiseCpuCopy, SiluTimesUpEqualsAten) {
  at::manual_seed(3);
  for (const std::int64_t n : {1536, 40, 7}) {
    at::Tensor g = at::randn({3, n}) * 4;
    g[0][0] = -100.0f;  // e^100 saturates at ~2.4e38: silu is ~0
    g[1][0] = 100.0f;   // e^-100 underflows to 0: silu is g
    const at::Tensor u = at::randn({3, n});
    ASSERT_TRUE(silu_mul_cpu_applies(g, u));
    const at::Tensor want = at::silu(g) * u;
    const at::Tensor got = silu_mul_cpu(g, u);
    EXPECT_TRUE(at::allclose(got, want, 1e-5, 1e-6)) << n << ": " << max_abs(got, want);
  }
}

// exp16 in each copy's lane set, with its target (the AVX-512 and AVX2 copies contract the
// polynomial into FMAs).
using ExpFn = void (*)(const float*, float*);
void exp_generic(const float* x, float* y) {
  using L = lanes::GenericLanes;
  lanes::store(y, lanes::exp16<L>(lanes::load<L::F>(x)));
}
KVSAFE_TARGET_AVX512 void exp_avx512(const float* x, float* y) {
  using L = lanes::Avx512Lanes;
  lanes::store(y, lanes::exp16<L>(lanes::load<L::F>(x)));
}
KVSAFE_TARGET_AVX2 void exp_avx2(const float* x, float* y) {
  using L = lanes::Avx2Lanes;
  lanes::store(y, lanes::exp16<L>(lanes::load<L::F>(x)));
}

// The copy of exp16 the kernels run now.
ExpFn exp_copy() {
  return lanes::pick_copy<ExpFn>({.avx512 = &exp_avx512, .avx2 = &exp_avx2, .generic = &exp_generic});
}

TEST_P(ElementwiseCpuCopy, VectorExpIsWithinFourUlpAndExactAtTheEnds) {
  std::vector<float> xs;
  for (float x = -87.0f; x <= 88.37f; x += 0.01953125f) xs.push_back(x);
  xs.push_back(0.0f);
  xs.push_back(-0.0f);
  while (xs.size() % 16 != 0) xs.push_back(1.0f);
  {
    const ExpFn exp = exp_copy();
    for (std::size_t i = 0; i < xs.size(); i += 16) {
      alignas(64) float y[16];
      exp(xs.data() + i, y);
      for (std::size_t lane = 0; lane < 16; ++lane) {
        const double want = std::exp(static_cast<double>(xs[i + lane]));
        const double ulp =
            std::nextafter(static_cast<float>(want), std::numeric_limits<float>::infinity()) - static_cast<float>(want);
        ASSERT_LE(std::abs(static_cast<double>(y[lane]) - want), 4 * ulp) << "x = " << xs[i + lane];
      }
    }
    // Below the normal range exactly 0 (-inf included); above 88.376 a finite saturation, never
    // +inf (2^128 would spell it in the exponent bits); NaN stays NaN.
    const float inf = std::numeric_limits<float>::infinity();
    alignas(64) const float ends[16] = {-88.0f,
                                        -100.0f,
                                        -1e30f,
                                        -inf,
                                        88.38f,
                                        88.5f,
                                        88.72f,
                                        100.0f,
                                        1e30f,
                                        inf,
                                        std::numeric_limits<float>::quiet_NaN(),
                                        0.0f,
                                        0.0f,
                                        0.0f,
                                        0.0f,
                                        0.0f};
    alignas(64) float y[16];
    exp(ends, y);
    for (int lane = 0; lane < 4; ++lane) EXPECT_EQ(y[lane], 0.0f) << ends[lane];
    for (int lane = 4; lane < 10; ++lane) {
      EXPECT_TRUE(std::isfinite(y[lane])) << ends[lane] << " -> " << y[lane];
      EXPECT_GT(y[lane], 2e38f) << ends[lane];
    }
    EXPECT_TRUE(std::isnan(y[10]));
  }
}

KVSAFE_INSTANTIATE_CPU_COPIES(ElementwiseCpuCopy);

TEST(ElementwiseCpu, TheAvx2AndAvx512CopiesGiveTheSameBitsAndTheGenericOneRuns) {
  // The same lane operations in the same order, FMAs included (engine/lanes16.h): a model's
  // activations must not depend on which of the two a CPU has. The generic copy has no FMA:
  // some bits differ, which proves the AVX2 copy is not the generic one under another name.
  using kvsafe::testing::with_cpu_kernels;
  if (!cpu_runs(CpuKernels::kAvx512) || !cpu_runs(CpuKernels::kAvx2)) GTEST_SKIP() << "needs both copies here";
  at::manual_seed(9);
  const at::Tensor x = at::randn({5, 576}) * 3, weight = at::randn({576});
  const at::Tensor q = at::randn({2, 3, 4, 64}).transpose(1, 2);
  const RopeCosSin rope{.cos = at::randn({2, 3, 48}), .sin = at::randn({2, 3, 48})};
  const at::Tensor g = at::randn({7, 1537}) * 4, u = at::randn({7, 1537});
  const char* what[3] = {"RMSNorm", "RoPE", "silu(g) * u"};
  at::Tensor out[3][3];  // [copy][op]
  for (const CpuKernels copy : {CpuKernels::kAvx512, CpuKernels::kAvx2, CpuKernels::kGeneric}) {
    at::Tensor* o = out[static_cast<int>(copy)];
    ASSERT_TRUE(with_cpu_kernels(copy, [&] {
      o[0] = rms_norm(x, weight, 1e-5);
      o[1] = apply_rope(q, rope);
      o[2] = silu_mul_cpu(g, u);
    }));
  }
  const auto& avx512 = out[static_cast<int>(CpuKernels::kAvx512)];
  const auto& avx2 = out[static_cast<int>(CpuKernels::kAvx2)];
  const auto& generic = out[static_cast<int>(CpuKernels::kGeneric)];
  for (int op = 0; op < 3; ++op) {
    EXPECT_TRUE(at::equal(avx512[op], avx2[op])) << what[op];
#if !defined(__FMA__)  // a build for an FMA target contracts the generic copy too
    EXPECT_FALSE(at::equal(avx2[op], generic[op])) << what[op] << ": the generic copy did not run";
#endif
  }
}

}  // namespace
}  // namespace kvsafe::engine
