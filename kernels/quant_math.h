#pragma once
// Scalar arithmetic shared by the CPU reference (*_cpu.cpp) and the CUDA kernels
// (*_cuda.cu): the same inline functions compile for host and device, so both sides
// round identically. Built without FMA contraction on both sides (-ffp-contract=off,
// nvcc -fmad=false; kernels/CMakeLists.txt): a contracted a*b+c rounds once, not twice.
// Torch-free and header-only.

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define KVSAFE_HD __host__ __device__ __forceinline__
#else
#define KVSAFE_HD inline
#endif

namespace kvsafe::kernels::math {

KVSAFE_HD std::uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

KVSAFE_HD float bits_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// Round half to even for |v| < 2^22 (torch.round, rint): adding 1.5*2^23 pushes the
// fraction out of the mantissa under the default round-to-nearest-even mode. Callers clamp
// to the code range first, so |v| stays far below 2^22. Vectorizes with plain SSE2.
KVSAFE_HD float round_half_even(float v) {
  // NOTE: without -ffast-math neither GCC nor nvcc may fold (v + m) - m into v.
  const float magic = 12582912.0f;  // 1.5 * 2^23
  const float t = v + magic;
  return t - magic;
}

KVSAFE_HD float clampf(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// IEEE binary16 <-> binary32, round to nearest even, overflow to +-inf (callers saturate
// first when they need finite values). Bit manipulation, identical on host and device.
KVSAFE_HD std::uint16_t float_to_half(float f) {
  const std::uint32_t x = float_bits(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<std::uint16_t>(sign | (abs > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {
    // Subnormal half (or zero): quantum 2^-24. abs * 2^24 is exact in float for this range.
    const float scaled = bits_float(abs) * 16777216.0f;
    return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(round_half_even(scaled)));
  }
  // Normal: round the 23-bit mantissa to 10 bits, half to even, then rebias 127 -> 15.
  const std::uint32_t rounded = abs + 0x0fffu + ((abs >> 13) & 1u);
  return static_cast<std::uint16_t>(sign | ((rounded - (112u << 23)) >> 13));
}

KVSAFE_HD float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(mant) * 5.9604644775390625e-08f;  // mant * 2^-24, exact
    return bits_float(float_bits(v) | sign);
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

// FP8 formats (OCP 8-bit floating point; NVIDIA __nv_fp8_e4m3 / __nv_fp8_e5m2):
//   e4m3fn: bias 7, no infinities, 0x7f/0xff NaN, max 448, min normal 2^-6, quantum 2^-9.
//   e5m2:   bias 15, IEEE-like with infinities, max 57344, min normal 2^-14, quantum 2^-16.
// Encoding saturates to the largest finite value (__NV_SATFINITE, what vLLM uses) and rounds
// to nearest even. NaN input is rejected before these run (kernels check inputs).
struct Fp8Format {
  int mant_bits;          // 3 | 2
  int bias;               // 7 | 15
  float max_finite;       // 448 | 57344
  std::uint8_t max_code;  // 0x7e | 0x7b
  float subnormal_inv_q;  // 2^9 | 2^16
};

KVSAFE_HD Fp8Format fp8_format(bool e4m3) {
  return e4m3 ? Fp8Format{3, 7, 448.0f, 0x7e, 512.0f} : Fp8Format{2, 15, 57344.0f, 0x7b, 65536.0f};
}

KVSAFE_HD std::uint8_t fp8_encode(float v, const Fp8Format& f) {
  const std::uint32_t x = float_bits(v);
  const std::uint8_t sign = static_cast<std::uint8_t>((x >> 24) & 0x80u);
  float a = bits_float(x & 0x7fffffffu);
  if (!(a < f.max_finite)) return static_cast<std::uint8_t>(sign | f.max_code);  // saturate (and +-inf)
  const std::uint32_t min_normal_bits = static_cast<std::uint32_t>(127 - f.bias + 1) << 23;
  if (float_bits(a) < min_normal_bits) {
    // Subnormal range: code = round(a / quantum); a code of 2^mant_bits is the smallest
    // normal, whose encoding is the same integer.
    return static_cast<std::uint8_t>(sign | static_cast<std::uint32_t>(round_half_even(a * f.subnormal_inv_q)));
  }
  const int drop = 23 - f.mant_bits;
  const std::uint32_t abs = float_bits(a);
  const std::uint32_t rounded = abs + ((1u << (drop - 1)) - 1u) + ((abs >> drop) & 1u);
  std::uint32_t code = (rounded >> drop) - (static_cast<std::uint32_t>(127 - f.bias) << f.mant_bits);
  if (code > f.max_code) code = f.max_code;  // rounded up past the largest finite value
  return static_cast<std::uint8_t>(sign | code);
}

KVSAFE_HD float fp8_decode(std::uint8_t c, const Fp8Format& f) {
  const std::uint32_t sign = static_cast<std::uint32_t>(c & 0x80u) << 24;
  const std::uint32_t exp = (c & 0x7fu) >> f.mant_bits;
  const std::uint32_t mant = c & ((1u << f.mant_bits) - 1u);
  if (exp == 0) {
    const float v = static_cast<float>(mant) / f.subnormal_inv_q;  // exact: power-of-two divisor
    return bits_float(float_bits(v) | sign);
  }
  const std::uint32_t max_exp = (1u << (7 - f.mant_bits)) - 1u;
  if (exp == max_exp) {
    if (f.mant_bits == 3) {
      if (mant == 7u) return bits_float(sign | 0x7fc00000u);  // e4m3fn NaN
    } else {
      return bits_float(sign | 0x7f800000u | (mant ? 0x400000u : 0u));  // e5m2 inf / NaN
    }
  }
  return bits_float(sign | ((exp + 127u - static_cast<std::uint32_t>(f.bias)) << 23) | (mant << (23 - f.mant_bits)));
}

}  // namespace kvsafe::kernels::math
