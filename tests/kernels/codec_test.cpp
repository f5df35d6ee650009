// The group codec against literal formulas: integer (KIVI-style asym, sym), FP8 E4M3/E5M2
// (vLLM semantics), llama.cpp block types (ggml-quants.c), plus the shared fp16 rounding.

#include <gtest/gtest.h>

#include <c10/util/Half.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "common/cpu_kernels.h"
#include "kernels/group_codec.h"
#include "kernels/group_codec_cpu_avx2.h"
#include "kernels/group_codec_cpu_avx512.h"
#include "kernels/group_codec_impl.h"
#include "kernels/quant_math.h"
#include "tests/testing/cpu_copies.h"

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

// quantize_pack_cpu / unpack_dequantize_cpu (vectorized where the CPU allows) against the
// per-group reference (group_codec_impl.h, what the CUDA kernels run), bit for bit: codes,
// scales, zeros and outputs, over widths, group lengths with tails, scale kinds, signed
// zeros, constant groups, subnormals, fp8 rounding boundaries and saturation.
void expect_matches_reference(const std::vector<float>& x, CodecParams p, const char* what) {
  p.n_groups = static_cast<std::int64_t>(x.size()) / p.group_len;
  const std::size_t cb = static_cast<std::size_t>(codes_bytes(p));
  const std::size_t nc = static_cast<std::size_t>(p.n_groups) * cb;
  const std::size_t ns = static_cast<std::size_t>(p.n_groups) * 4 + 4;
  std::vector<std::uint8_t> codes(nc, 0xaa), scales(ns, 0), zeros(ns, 0);
  std::vector<std::uint8_t> ref_codes(nc, 0x55), ref_scales(ns, 0), ref_zeros(ns, 0);
  quantize_pack_cpu(x.data(), p, codes.data(), scales.data(), zeros.data());
  for (std::int64_t g = 0; g < p.n_groups; ++g) {
    detail::quantize_group(x.data() + g * p.group_len, p, g, ref_codes.data() + g * cb, ref_scales.data(),
                           ref_zeros.data(), static_cast<int>(cb));
  }
  const auto info = [&] {
    return std::string(what) + " codec " + std::to_string(static_cast<int>(p.codec)) + " bits " +
           std::to_string(p.bits) + " group " + std::to_string(p.group_len) + " fp32 " + std::to_string(p.fp32_scales) +
           " fp8 scale " + std::to_string(p.fp8_scale);
  };
  ASSERT_EQ(codes, ref_codes) << info();
  ASSERT_EQ(scales, ref_scales) << info();
  ASSERT_EQ(zeros, ref_zeros) << info();
  // Dequantize the codes above and, separately, arbitrary bytes (every fp8 code included).
  std::vector<std::uint8_t> any(nc);
  for (std::size_t i = 0; i < nc; ++i) any[i] = static_cast<std::uint8_t>(i * 167 + 13);
  for (const std::vector<std::uint8_t>* c : {&codes, &any}) {
    std::vector<float> out(x.size(), 1.0f), ref(x.size(), 2.0f);
    unpack_dequantize_cpu(c->data(), scales.data(), zeros.data(), p, out.data());
    for (std::int64_t g = 0; g < p.n_groups; ++g) {
      detail::dequantize_group(c->data() + g * cb, scales.data(), zeros.data(), p, g, ref.data() + g * p.group_len);
    }
    ASSERT_EQ(std::memcmp(out.data(), ref.data(), out.size() * sizeof(float)), 0) << info();
  }
}

// The vector path of each copy of the CPU kernels (AVX-512, AVX2) against the per-group
// reference. The generic copy runs the reference itself, and a comparison with itself would
// prove nothing: it is reported as skipped.
class CodecCopy : public kvsafe::testing::CpuCopyTest {};

TEST_P(CodecCopy, VectorizedPathsMatchThePerGroupReferenceBitForBit) {
  if (copy() == CpuKernels::kGeneric) GTEST_SKIP() << "the generic copy of the KV codec is the per-group reference";
  std::mt19937 rng(11);
  std::normal_distribution<float> n(0.0f, 1.0f);
  const auto data = [&](int size, int kind) {
    std::vector<float> x(static_cast<std::size_t>(size));
    for (std::size_t i = 0; i < x.size(); ++i) {
      switch (kind) {
        case 0:
          x[i] = n(rng) * 3.0f;
          break;
        case 1:  // signed zeros with only positives (first half) or negatives: min/max ties on +-0
          x[i] = rng() % 3 == 0 ? (rng() % 2 ? 0.0f : -0.0f) : static_cast<float>(1 + rng() % 7) * 0.5f;
          if (2 * i >= x.size() && x[i] != 0.0f) x[i] = -x[i];
          break;
        case 2:  // constant runs, subnormals and wide exponents
          x[i] = i % 7 < 4 ? 1.5f : std::ldexp(n(rng), static_cast<int>(rng() % 80) - 140);
          break;
        default:  // fp8 territory: exact halfway points and values around saturation
          x[i] = std::ldexp(1.0f + static_cast<float>(rng() % 32) / 32.0f, static_cast<int>(rng() % 44) - 26) *
                 (rng() % 2 ? -1.0f : 1.0f);
          if (i % 11 == 0) x[i] = (rng() % 2 ? 464.0f : 57344.0f + 4096.0f) * (i % 2 ? -1.0f : 1.0f);
          break;
      }
    }
    return x;
  };
  // Quotients x / s on exact half-integers and one ulp either side, s the scale the group
  // will store: where any shortcut for the division (a reciprocal multiply) would round
  // differently.
  const auto near_ties = [&](int size, const CodecParams& p) {
    std::vector<float> x(static_cast<std::size_t>(size));
    const bool asym = p.codec == Codec::kIntAsym;
    const int qmax = asym ? (1 << p.bits) - 1 : (1 << (p.bits - 1)) - 1;
    for (int g0 = 0; g0 < size; g0 += p.group_len) {
      const float top = 0.37f * static_cast<float>(qmax) * (1.0f + static_cast<float>(rng() % 1000) / 100.0f);
      float scale = top / static_cast<float>(qmax);
      if (!p.fp32_scales) scale = half_round(scale);
      for (int i = g0; i < g0 + p.group_len; ++i) {
        const float k = static_cast<float>(rng() % static_cast<unsigned>(qmax));
        float v = (k + 0.5f) * scale;
        if (rng() % 3 == 1) v = std::nextafter(v, INFINITY);
        if (rng() % 3 == 2) v = std::nextafter(v, -INFINITY);
        x[static_cast<std::size_t>(i)] = std::fmin(v, top) * (!asym && rng() % 2 ? -1.0f : 1.0f);
      }
      x[static_cast<std::size_t>(g0)] = asym ? 0.0f : top;  // min 0 (asym), max |x| = top (sym)
      if (p.group_len > 1) x[static_cast<std::size_t>(g0 + 1)] = top;
    }
    return x;
  };
  for (int group : {1, 5, 16, 31, 32, 64, 100, 128, 130, 200}) {
    for (Codec codec : {Codec::kIntSym, Codec::kIntAsym}) {
      for (int bits = 2; bits <= 8; ++bits) {
        for (bool fp32 : {false, true}) {
          const CodecParams p{.codec = codec, .bits = bits, .group_len = group, .fp32_scales = fp32};
          expect_matches_reference(near_ties(group * 40, p), p, "ties");
        }
      }
    }
    for (int kind = 0; kind < 4; ++kind) {
      const std::vector<float> x = data(group * 7, kind);
      for (Codec codec : {Codec::kIntSym, Codec::kIntAsym}) {
        for (int bits = 2; bits <= 8; ++bits) {
          for (bool fp32 : {false, true}) {
            expect_matches_reference(x, {.codec = codec, .bits = bits, .group_len = group, .fp32_scales = fp32}, "int");
          }
        }
      }
      for (Codec codec : {Codec::kFp8E4M3, Codec::kFp8E5M2}) {
        for (float scale : {1.0f, 0.37f, 1e-3f, 3.0e4f}) {
          expect_matches_reference(x, {.codec = codec, .group_len = group, .fp8_scale = scale}, "fp8");
        }
      }
    }
  }
  // Every fp8 code's decoded value, re-encoded (a row of 256 values).
  for (bool e4m3 : {true, false}) {
    std::vector<float> all;
    for (int c = 0; c < 256; ++c) {
      const float v = math::fp8_decode(static_cast<std::uint8_t>(c), math::fp8_format(e4m3));
      if (std::isfinite(v)) all.push_back(v);
    }
    const Codec codec = e4m3 ? Codec::kFp8E4M3 : Codec::kFp8E5M2;
    expect_matches_reference(all, {.codec = codec, .group_len = static_cast<int>(all.size())}, "fp8 codes");
  }
}

KVSAFE_INSTANTIATE_CPU_COPIES(CodecCopy);

TEST(Codec, RefusesBadParameters) {
  std::vector<float> x(16, 1.0f);
  EXPECT_ANY_THROW(run(x, {.codec = Codec::kQ4_0, .group_len = 16}));
  EXPECT_ANY_THROW(run(x, {.codec = Codec::kIntAsym, .bits = 9}));
  EXPECT_ANY_THROW(run(x, {.codec = Codec::kFp8E4M3, .fp8_scale = 0.0f}));
}

}  // namespace
}  // namespace kvsafe::kernels
