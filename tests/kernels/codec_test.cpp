// The group codec against literal formulas: integer (KIVI-style asym, sym), FP8 E4M3/E5M2
// (vLLM semantics), llama.cpp block types (ggml-quants.c), plus the shared fp16 rounding.

#include <gtest/gtest.h>

#include <c10/util/Half.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/group_codec.h"
#include "kernels/quant_math.h"

namespace kvsafe::kernels {
namespace {

struct Coded {
  std::vector<std::uint8_t> codes;
  std::vector<std::uint8_t> scales, zeros;
  std::vector<float> out;
};

Coded run(const std::vector<float>& x, CodecParams p) {
  if (p.group_len == 0) p.group_len = static_cast<int>(x.size());
  p.n_groups = static_cast<std::int64_t>(x.size()) / p.group_len;
  Coded c;
  c.codes.resize(static_cast<std::size_t>(p.n_groups * codes_bytes(p)));
  c.scales.resize(static_cast<std::size_t>(p.n_groups * 4 + 4));
  c.zeros.resize(static_cast<std::size_t>(p.n_groups * 4 + 4));
  c.out.resize(x.size());
  quantize_pack_cpu(x.data(), p, c.codes.data(), c.scales.data(), c.zeros.data());
  unpack_dequantize_cpu(c.codes.data(), c.scales.data(), c.zeros.data(), p, c.out.data());
  return c;
}

float half_round(float v) {
  return math::half_to_float(math::float_to_half(v));
}

TEST(Fp16, MatchesC10HalfRoundToNearestEven) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> exp(-30.0f, 17.0f);
  for (int i = 0; i < 200000; ++i) {
    const float v =
        std::ldexp(1.0f + static_cast<float>(i % 1000) / 1000.0f, static_cast<int>(exp(rng))) * (i % 2 ? -1.0f : 1.0f);
    const c10::Half h(v);
    EXPECT_EQ(math::float_to_half(v), h.x) << v;
    EXPECT_EQ(math::half_to_float(h.x), static_cast<float>(h));
  }
}

TEST(IntAsym, HandExample) {
  // min 0, max 3, 2 bits: s = 3/3 = 1, m = 0; 0.5 -> round half to even -> 0; 1.4 -> 1.
  const Coded c = run({0.0f, 0.5f, 1.4f, 3.0f}, {.codec = Codec::kIntAsym, .bits = 2});
  EXPECT_EQ(c.out, (std::vector<float>{0.0f, 0.0f, 1.0f, 3.0f}));
  EXPECT_EQ(c.codes[0], 0b11010000);  // codes 0,0,1,3 packed LSB first
}

TEST(IntSym, HandExample) {
  // amax 4, 3 bits: qmax 3, s = half(4/3); q = clamp(round(x/s), -4, 3); x^ = q*s.
  const std::vector<float> x = {-4.0f, 3.0f, 1.5f, 0.5f};
  const Coded c = run(x, {.codec = Codec::kIntSym, .bits = 3});
  const float s = half_round(4.0f / 3.0f);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float q = std::fmin(3.0f, std::fmax(-4.0f, std::nearbyint(x[i] / s)));
    EXPECT_EQ(c.out[i], q * s) << i;
  }
  EXPECT_EQ(c.out[0], -3.0f * s);  // -4/s = -3.0007 -> -3: the sym grid has no +-4s at this scale
}

TEST(IntCodecs, PropertiesErrorGridConstantZerosOutlierDenormals) {
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    for (Codec codec : {Codec::kIntAsym, Codec::kIntSym}) {
      std::vector<float> x(128);
      for (float& v : x) v = n(rng);
      const Coded c = run(x, {.codec = codec, .bits = bits, .fp32_scales = true});
      float s;
      std::memcpy(&s, c.scales.data(), 4);
      for (std::size_t i = 0; i < x.size(); ++i) {
        // Sym clamps the positive end at qmax*s = amax*(1 - 1/qmax...) only when x is the max.
        EXPECT_LE(std::fabs(c.out[i] - x[i]), s / 2 * 1.0001f + 1e-6f) << bits << " " << i;
      }
      // Values on the grid round-trip exactly.
      std::vector<float> grid(64);
      const int top = codec == Codec::kIntAsym ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
      const int bottom = codec == Codec::kIntAsym ? 0 : -top;
      for (std::size_t i = 0; i < grid.size(); ++i) {
        const int q = i == 0 ? bottom : i == 1 ? top : bottom + static_cast<int>(rng() % (top - bottom + 1));
        grid[i] = codec == Codec::kIntAsym ? static_cast<float>(q) * 0.25f - 1.0f : static_cast<float>(q) * 0.25f;
      }
      EXPECT_EQ(run(grid, {.codec = codec, .bits = bits}).out, grid) << bits;
    }
  }
  EXPECT_EQ(run(std::vector<float>(32, 1.5f), {.codec = Codec::kIntAsym, .bits = 4}).out, std::vector<float>(32, 1.5f));
  EXPECT_EQ(run(std::vector<float>(32, 0.0f), {.codec = Codec::kIntSym, .bits = 4}).out, std::vector<float>(32, 0.0f));
  std::vector<float> outlier(128, 0.01f);
  outlier[7] = 1e4f;
  const Coded o = run(outlier, {.codec = Codec::kIntSym, .bits = 8});
  EXPECT_NEAR(o.out[7], 1e4f, 1e4f / 127);
  EXPECT_EQ(o.out[0], 0.0f);  // crushed by the outlier's scale, as expected of per-group RTN
  std::vector<float> denormal(32, 1e-40f);
  denormal[3] = 3e-40f;
  for (float v : run(denormal, {.codec = Codec::kIntAsym, .bits = 4}).out) {
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_LT(std::fabs(v), 1e-30f);
  }
}

// Nearest representable value, ties to the even code: an oracle independent of the encoder.
std::uint8_t fp8_oracle(float v, bool e4m3) {
  const math::Fp8Format f = math::fp8_format(e4m3);
  const float a = std::fmin(std::fabs(v), f.max_finite);
  int best = 0;
  float best_err = INFINITY;
  for (int c = 0; c <= f.max_code; ++c) {
    const float err = std::fabs(math::fp8_decode(static_cast<std::uint8_t>(c), f) - a);
    if (err < best_err || (err == best_err && (c % 2) == 0)) {
      best = c;
      best_err = err;
    }
  }
  return static_cast<std::uint8_t>(best | (std::signbit(v) ? 0x80 : 0));
}

TEST(Fp8, EveryCodeDecodesAndReencodesToItself) {
  for (bool e4m3 : {true, false}) {
    const math::Fp8Format f = math::fp8_format(e4m3);
    int checked = 0;
    for (int c = 0; c < 256; ++c) {
      const float v = math::fp8_decode(static_cast<std::uint8_t>(c), f);
      if (!std::isfinite(v)) continue;  // e4m3fn NaN 0x7f/0xff; e5m2 inf and NaN
      EXPECT_EQ(math::fp8_encode(v, f), c) << e4m3 << " " << c;
      ++checked;
    }
    EXPECT_EQ(checked, e4m3 ? 254 : 248);
  }
}

TEST(Fp8, SaturationAndRoundingAtBoundaries) {
  const math::Fp8Format e4 = math::fp8_format(true), e5 = math::fp8_format(false);
  EXPECT_EQ(math::fp8_decode(0x7e, e4), 448.0f);
  EXPECT_EQ(math::fp8_decode(0x7b, e5), 57344.0f);
  EXPECT_EQ(math::fp8_encode(500.0f, e4), 0x7e);  // saturating, never NaN
  EXPECT_EQ(math::fp8_encode(-1e9f, e4), 0xfe);
  EXPECT_EQ(math::fp8_encode(INFINITY, e4), 0x7e);
  EXPECT_EQ(math::fp8_encode(60000.0f, e5), 0x7b);
  EXPECT_EQ(math::fp8_encode(1.0625f, e4), 0x38);                    // halfway 1 and 1.125 -> even (1)
  EXPECT_EQ(math::fp8_encode(1.1875f, e4), 0x3a);                    // halfway 1.125 and 1.25 -> even (1.25)
  EXPECT_EQ(math::fp8_encode(std::ldexp(1.0f, -10), e4), 0x00);      // half the smallest subnormal -> 0
  EXPECT_EQ(math::fp8_encode(3 * std::ldexp(1.0f, -10), e4), 0x02);  // 1.5 quanta -> 2
  EXPECT_EQ(math::fp8_encode(1.125f, e5), 0x3c);                     // halfway 1 and 1.25 -> even (1)
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-20.0f, 20.0f);
  for (int i = 0; i < 20000; ++i) {
    const float v = std::ldexp(u(rng), static_cast<int>(rng() % 30) - 18);
    EXPECT_EQ(math::fp8_encode(v, e4), fp8_oracle(v, true)) << v;
    EXPECT_EQ(math::fp8_encode(v, e5), fp8_oracle(v, false)) << v;
  }
}

TEST(Fp8, ScaleDividesBeforeEncoding) {
  // vLLM: q = fp8(x / scale), x^ = float(q) * scale.
  const Coded c = run({10.0f, -3.0f}, {.codec = Codec::kFp8E4M3, .fp8_scale = 0.5f});
  EXPECT_EQ(c.out, (std::vector<float>{10.0f, -3.0f}));
  const Coded big = run({1000.0f}, {.codec = Codec::kFp8E4M3, .fp8_scale = 1.0f});
  EXPECT_EQ(big.out[0], 448.0f);
}

std::vector<float> block(std::initializer_list<float> head, float fill) {
  std::vector<float> x(32, fill);
  std::copy(head.begin(), head.end(), x.begin());
  return x;
}

TEST(LlamaCpp, Q8_0RoundsHalfAwayFromZero) {
  // amax 127 -> d = 1, id = 1; roundf(2.5) = 3, roundf(-2.5) = -3 (not half-even).
  const Coded c = run(block({127.0f, 2.5f, -2.5f, 0.4f}, 0.0f), {.codec = Codec::kQ8_0, .group_len = 32});
  EXPECT_EQ(c.out[0], 127.0f);
  EXPECT_EQ(c.out[1], 3.0f);
  EXPECT_EQ(c.out[2], -3.0f);
  EXPECT_EQ(c.out[3], 0.0f);
}

TEST(LlamaCpp, Q4_0SignedMaxAndTruncation) {
  // Signed max -8 -> d = -8/-8 = 1; q = min(15, (int8)(x + 8.5)); x^ = (q - 8) * d.
  const Coded c = run(block({-8.0f, 3.2f, 7.9f, -0.6f}, 0.0f), {.codec = Codec::kQ4_0, .group_len = 32});
  EXPECT_EQ(c.out[0], -8.0f);
  EXPECT_EQ(c.out[1], 3.0f);   // (int8)(11.7) = 11
  EXPECT_EQ(c.out[2], 7.0f);   // (int8)(16.4) = 16 -> 15: +8 is not representable
  EXPECT_EQ(c.out[3], -1.0f);  // (int8)(7.9) = 7
  // Largest magnitude positive: d = 8/-8 = -1, the grid flips sign.
  const Coded p = run(block({8.0f, 1.0f}, 0.0f), {.codec = Codec::kQ4_0, .group_len = 32});
  EXPECT_EQ(p.out[0], 8.0f);  // x*id = -8 -> (int8)(0.5) = 0 -> (0-8)*-1
  EXPECT_EQ(p.out[1], 1.0f);
}

TEST(LlamaCpp, Q4_1AndQ5Types) {
  // q4_1: min 0, max 15 -> d = 1, m = 0; q = min(15, (int8)((x - min) * id + 0.5)).
  const Coded a = run(block({0.0f, 15.0f, 2.5f, 2.49f}, 1.0f), {.codec = Codec::kQ4_1, .group_len = 32});
  EXPECT_EQ(a.out[2], 3.0f);
  EXPECT_EQ(a.out[3], 2.0f);
  // q5_0: signed max -16 -> d = 1; 15.7 -> (int8)(32.2) = 32 -> 31 -> 15.
  const Coded b = run(block({-16.0f, 15.7f, 0.2f}, 0.0f), {.codec = Codec::kQ5_0, .group_len = 32});
  EXPECT_EQ(b.out[0], -16.0f);
  EXPECT_EQ(b.out[1], 15.0f);
  EXPECT_EQ(b.out[2], 0.0f);
  // q5_1: min -1, max 30 -> d = 1, m = -1; 10.5 -> (uint8)(11.5 + 0.5) = 12 -> 11.
  const Coded c = run(block({-1.0f, 30.0f, 10.5f}, 0.0f), {.codec = Codec::kQ5_1, .group_len = 32});
  EXPECT_EQ(c.out[2], 11.0f);
  // Scales are fp16: a d that is not representable is rounded in storage only.
  const Coded d = run(block({0.1f}, 0.0f), {.codec = Codec::kQ8_0, .group_len = 32});
  EXPECT_EQ(d.out[0], 127.0f * half_round(0.1f / 127.0f));
}

TEST(Codec, RefusesBadParameters) {
  std::vector<float> x(16, 1.0f);
  EXPECT_ANY_THROW(run(x, {.codec = Codec::kQ4_0, .group_len = 16}));
  EXPECT_ANY_THROW(run(x, {.codec = Codec::kIntAsym, .bits = 9}));
  EXPECT_ANY_THROW(run(x, {.codec = Codec::kFp8E4M3, .fp8_scale = 0.0f}));
}

}  // namespace
}  // namespace kvsafe::kernels
