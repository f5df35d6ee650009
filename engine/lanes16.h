#pragma once
// Internal to engine/: sixteen float lanes as GCC vector extensions, for the CPU kernels
// (attention_core_cpu.cpp, packed_gemm.cpp, elementwise_cpu.cpp). Everything is always
// inlined, so each kernel's target-specific copy ([[gnu::target("avx512f")]], packed_gemm's
// "avx2,fma" one, and the baseline one) compiles these for its own instruction set: one
// AVX-512 register, two AVX or four SSE registers per vector.
//
// NOTE: GCC contracts a multiply and an add into an FMA where the target has one
// (-ffp-contract=fast is its C++ default): a kernel's AVX-512 copy and its baseline copy agree
// to float rounding, not bit for bit; each gives the same bits at every thread count.
// Files that include this pass 64-byte vectors between always-inline functions only; GCC's ABI
// note about such calls (-Wpsabi) does not apply to them, and is off from here on.
#pragma GCC diagnostic ignored "-Wpsabi"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace kvsafe::engine::lanes {

using Lanes16 = float __attribute__((vector_size(64)));
using Lanes8 = float __attribute__((vector_size(32)));
using Lanes4 = float __attribute__((vector_size(16)));
using Ints16 = std::int32_t __attribute__((vector_size(64)));

// Whether this CPU runs the kernels' [[gnu::target("avx512f")]] copies (checked once).
inline bool cpu_has_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return ok;
#else
  return false;
#endif
}

[[gnu::always_inline]] inline Lanes16 load16(const float* p) {
  Lanes16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

[[gnu::always_inline]] inline void store16(float* p, const Lanes16& v) {
  std::memcpy(p, &v, sizeof(v));
}

[[gnu::always_inline]] inline float lane_sum(const Lanes16& v) {
  Lanes8 lo, hi;
  std::memcpy(&lo, &v, sizeof(lo));
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(lo), sizeof(hi));
  const Lanes8 s8 = lo + hi;
  Lanes4 a, b;
  std::memcpy(&a, &s8, sizeof(a));
  std::memcpy(&b, reinterpret_cast<const char*>(&s8) + sizeof(a), sizeof(b));
  const Lanes4 s4 = a + b;
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

[[gnu::always_inline]] inline float lane_max(const Lanes16& v) {
  float m = v[0];
  for (int i = 1; i < 16; ++i) m = std::max(m, v[i]);
  return m;
}

// e^x on sixteen lanes, to about 2 ulp (Cephes' expf scheme: x = n ln2 + r with |r| <= ln2/2,
// a degree-6 polynomial for e^r, 2^n put into the exponent bits). Below -87.3 (e^x under the
// smallest normal float, -inf included) it is exactly 0, so masked scores get probability 0
// as with ATen's softmax. Above 88.376 it saturates at e^88.376 (~2.4e38): 2^n must stay a
// normal float (n <= 127), or the exponent bits would spell +inf. NaN stays NaN.
[[gnu::always_inline]] inline Lanes16 exp16(const Lanes16& in) {
  Lanes16 x = in;
  constexpr float kLowest = -87.33654f, kHighest = 88.3762626f;
  const Ints16 underflow = x < kLowest;
  x = x < kLowest ? Lanes16{} + kLowest : x;
  x = x > kHighest ? Lanes16{} + kHighest : x;
  // n = round(x / ln2), by adding and subtracting 1.5 * 2^23 (|x / ln2| < 2^22).
  constexpr float kRound = 12582912.0f;
  const Lanes16 n = (x * 1.44269504088896341f + kRound) - kRound;
  const Lanes16 r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // ln2 split for exactness
  Lanes16 p = Lanes16{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const Lanes16 y = p * r * r + r + 1.0f;
  const Ints16 exponent = (__builtin_convertvector(n, Ints16) + 127) << 23;
  Lanes16 scale;
  std::memcpy(&scale, &exponent, sizeof(scale));
  return underflow ? Lanes16{} : y * scale;
}

}  // namespace kvsafe::engine::lanes
