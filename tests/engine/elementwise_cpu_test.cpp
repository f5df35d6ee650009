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

namespace kvsafe::engine {
namespace {

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(ElementwiseCpu, RmsNormEqualsHfFormula) {
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
    EXPECT_TRUE(at::equal(rms_norm(strided, weight, 1e-5), rms_norm(strided.contiguous(), weight, 1e-5)));
  }
  // A row of zeros gives zeros (eps keeps the rsqrt finite).
  const at::Tensor zeros = at::zeros({2, 32});
  EXPECT_TRUE(at::equal(rms_norm(zeros, at::ones({32}), 1e-6), zeros));
}

TEST(ElementwiseCpu, RopeEqualsRotateHalfFormula) {
  at::manual_seed(2);
  // Full rotary (Llama) and partial rotary (Phi-3 style, 24 of 32 dims); x a transposed view
  // of [batch, n, heads, dim] as attention_block passes it.
  for (const std::int64_t rotary : {32, 24}) {
    const std::int64_t batch = 2, n = 3, heads = 4, dim = 32;
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

TEST(ElementwiseCpu, SiluTimesUpEqualsAten) {
  at::manual_seed(3);
  for (const std::int64_t n : {1536, 40, 7}) {
    at::Tensor g = at::randn({3, n}) * 4;
    g[0][0] = -100.0f;  // e^100 saturates: silu is ~0
    g[1][0] = 100.0f;   // e^-100 underflows to 0: silu is g
    const at::Tensor u = at::randn({3, n});
    ASSERT_TRUE(silu_mul_cpu_applies(g, u));
    const at::Tensor want = at::silu(g) * u;
    const at::Tensor got = silu_mul_cpu(g, u);
    EXPECT_TRUE(at::allclose(got, want, 1e-5, 1e-6)) << n << ": " << max_abs(got, want);
  }
}

TEST(ElementwiseCpu, VectorExpIsWithinFourUlpAndZeroBelowTheNormalRange) {
  using lanes::Lanes16;
  std::vector<float> xs;
  for (float x = -87.0f; x <= 88.0f; x += 0.01953125f) xs.push_back(x);
  xs.push_back(0.0f);
  xs.push_back(-0.0f);
  while (xs.size() % 16 != 0) xs.push_back(1.0f);
  for (std::size_t i = 0; i < xs.size(); i += 16) {
    const Lanes16 y = lanes::exp16(lanes::load16(xs.data() + i));
    for (int lane = 0; lane < 16; ++lane) {
      const double want = std::exp(static_cast<double>(xs[i + static_cast<std::size_t>(lane)]));
      const double ulp =
          std::nextafter(static_cast<float>(want), std::numeric_limits<float>::infinity()) - static_cast<float>(want);
      ASSERT_LE(std::abs(static_cast<double>(y[lane]) - want), 4 * ulp)
          << "x = " << xs[i + static_cast<std::size_t>(lane)];
    }
  }
  alignas(64) float low[16];
  for (int lane = 0; lane < 16; ++lane) low[lane] = -88.0f - static_cast<float>(lane) * 10.0f;
  low[15] = -std::numeric_limits<float>::infinity();
  const Lanes16 zero = lanes::exp16(lanes::load16(low));
  for (int lane = 0; lane < 16; ++lane) EXPECT_EQ(zero[lane], 0.0f) << low[lane];
}

}  // namespace
}  // namespace kvsafe::engine
