#pragma once
// Internal to engine/: sixteen float lanes for the CPU kernels (attention_core_cpu.cpp,
// packed_gemm.cpp, elementwise_cpu.cpp, greedy_cpu.cpp), held in native vectors of the
// instruction set each kernel copy is compiled for.
//
// A kernel body is a template over a lane set (Avx512Lanes, Avx2Lanes, GenericLanes): its
// `F` holds sixteen floats as one AVX-512 register, two AVX registers or four SSE registers,
// and its `I` sixteen int32 lanes likewise. Each operation works on the native parts, so GCC
// keeps every value in registers.
// NOTE: why not one 64-byte GCC vector for every copy. Outside an AVX-512 target GCC has no
// machine mode for it: such values lived in memory and every operation went through the
// stack (the AVX2 products ran at a small fraction of the BLAS; engine/README.md).
//
// Every copy computes the same lanes with the same operations in the same order, so the
// AVX-512 and AVX2 copies give the same bits; lane_sum adds in one fixed tree whatever the
// part width.
// NOTE: GCC contracts a multiply and an add into an FMA where the target has one
// (-ffp-contract=fast is its C++ default): the baseline copy (no FMA) agrees with the others
// to float rounding, not bit for bit; each copy gives the same bits at every thread count.
// Files that include this pass vectors between always-inline functions only; GCC's ABI note
// about such calls (-Wpsabi) does not apply to them, and is off from here on.
#pragma GCC diagnostic ignored "-Wpsabi"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/cpu_kernels.h"

namespace kvsafe::engine::lanes {

using Floats16 = float __attribute__((vector_size(64)));
using Floats8 = float __attribute__((vector_size(32)));
using Floats4 = float __attribute__((vector_size(16)));
using Int32s16 = std::int32_t __attribute__((vector_size(64)));
using Int32s8 = std::int32_t __attribute__((vector_size(32)));
using Int32s4 = std::int32_t __attribute__((vector_size(16)));

#define KVSAFE_LANES_INLINE [[gnu::always_inline]] inline

// Sixteen lanes of T in kParts native vectors NativeT (each kWidth lanes).
template <typename T, typename NativeT>
struct Wide {
  static constexpr int kWidth = static_cast<int>(sizeof(NativeT) / sizeof(T));
  static constexpr int kParts = 16 / kWidth;
  NativeT part[kParts];

  KVSAFE_LANES_INLINE T operator[](int lane) const { return part[lane / kWidth][lane % kWidth]; }
  KVSAFE_LANES_INLINE static Wide splat(T value) {
    Wide out;
#pragma GCC unroll 4
    for (int p = 0; p < kParts; ++p) out.part[p] = NativeT{} + value;
    return out;
  }
  KVSAFE_LANES_INLINE static Wide zero() {
    Wide out;
#pragma GCC unroll 4
    for (int p = 0; p < kParts; ++p) out.part[p] = NativeT{};
    return out;
  }
};

// Element-wise operators of two Wide values, and of a Wide and a scalar (either side).
#define KVSAFE_LANES_BINARY(op)                                                                                \
  template <typename T, typename N>                                                                            \
  KVSAFE_LANES_INLINE Wide<T, N> operator op(const Wide<T, N>& a, const Wide<T, N>& b) {                       \
    Wide<T, N> out;                                                                                            \
    _Pragma("GCC unroll 4") for (int p = 0; p < Wide<T, N>::kParts; ++p) out.part[p] = a.part[p] op b.part[p]; \
    return out;                                                                                                \
  }                                                                                                            \
  template <typename T, typename N>                                                                            \
  KVSAFE_LANES_INLINE Wide<T, N> operator op(const Wide<T, N>& a, T b) {                                       \
    Wide<T, N> out;                                                                                            \
    _Pragma("GCC unroll 4") for (int p = 0; p < Wide<T, N>::kParts; ++p) out.part[p] = a.part[p] op b;         \
    return out;                                                                                                \
  }                                                                                                            \
  template <typename T, typename N>                                                                            \
  KVSAFE_LANES_INLINE Wide<T, N> operator op(T a, const Wide<T, N>& b) {                                       \
    Wide<T, N> out;                                                                                            \
    _Pragma("GCC unroll 4") for (int p = 0; p < Wide<T, N>::kParts; ++p) out.part[p] = a op b.part[p];         \
    return out;                                                                                                \
  }                                                                                                            \
  template <typename T, typename N>                                                                            \
  KVSAFE_LANES_INLINE Wide<T, N>& operator op##=(Wide<T, N>& a, const Wide<T, N>& b) {                         \
    _Pragma("GCC unroll 4") for (int p = 0; p < Wide<T, N>::kParts; ++p) a.part[p] op## = b.part[p];           \
    return a;                                                                                                  \
  }

KVSAFE_LANES_BINARY(+)
KVSAFE_LANES_BINARY(-)
KVSAFE_LANES_BINARY(*)
KVSAFE_LANES_BINARY(/)
KVSAFE_LANES_BINARY(&)
KVSAFE_LANES_BINARY(|)
#undef KVSAFE_LANES_BINARY

template <typename T, typename N>
KVSAFE_LANES_INLINE Wide<T, N> operator-(const Wide<T, N>& a) {
  Wide<T, N> out;
#pragma GCC unroll 4
  for (int p = 0; p < Wide<T, N>::kParts; ++p) out.part[p] = -a.part[p];
  return out;
}

// Shifts of int lanes by a constant.
template <typename N>
KVSAFE_LANES_INLINE Wide<std::int32_t, N> operator<<(const Wide<std::int32_t, N>& a, int bits) {
  Wide<std::int32_t, N> out;
#pragma GCC unroll 4
  for (int p = 0; p < Wide<std::int32_t, N>::kParts; ++p) out.part[p] = a.part[p] << bits;
  return out;
}
template <typename N>
KVSAFE_LANES_INLINE Wide<std::int32_t, N> operator>>(const Wide<std::int32_t, N>& a, int bits) {
  Wide<std::int32_t, N> out;
#pragma GCC unroll 4
  for (int p = 0; p < Wide<std::int32_t, N>::kParts; ++p) out.part[p] = a.part[p] >> bits;
  return out;
}

// The instruction set's native vectors: floats, and int32 lanes of the same width.
template <typename NativeFloats, typename NativeInts>
struct LaneSet {
  using F = Wide<float, NativeFloats>;       // sixteen float lanes
  using I = Wide<std::int32_t, NativeInts>;  // sixteen int32 lanes (and comparison masks)
  static constexpr int kWidth = F::kWidth;   // floats per native vector
};

using Avx512Lanes = LaneSet<Floats16, Int32s16>;
using Avx2Lanes = LaneSet<Floats8, Int32s8>;
using GenericLanes = LaneSet<Floats4, Int32s4>;

// Comparisons: all-ones int lanes where true (GCC's vector comparison), as Wide ints.
#define KVSAFE_LANES_COMPARE(op)                                                                                   \
  template <typename N>                                                                                            \
  KVSAFE_LANES_INLINE auto operator op(const Wide<float, N>& a, const Wide<float, N>& b) {                         \
    using Mask = decltype(a.part[0] op b.part[0]);                                                                 \
    Wide<std::int32_t, Mask> out;                                                                                  \
    _Pragma("GCC unroll 4") for (int p = 0; p < Wide<float, N>::kParts; ++p) out.part[p] = a.part[p] op b.part[p]; \
    return out;                                                                                                    \
  }                                                                                                                \
  template <typename N>                                                                                            \
  KVSAFE_LANES_INLINE auto operator op(const Wide<float, N>& a, float b) {                                         \
    using Mask = decltype(a.part[0] op b);                                                                         \
    Wide<std::int32_t, Mask> out;                                                                                  \
    _Pragma("GCC unroll 4") for (int p = 0; p < Wide<float, N>::kParts; ++p) out.part[p] = a.part[p] op b;         \
    return out;                                                                                                    \
  }

KVSAFE_LANES_COMPARE(<)
KVSAFE_LANES_COMPARE(>)
KVSAFE_LANES_COMPARE(==)
KVSAFE_LANES_COMPARE(!=)
#undef KVSAFE_LANES_COMPARE

// mask ? a : b, per lane (mask lanes all ones or zero, as comparisons give).
template <typename N, typename M>
KVSAFE_LANES_INLINE Wide<float, N> select(const Wide<std::int32_t, M>& mask, const Wide<float, N>& a,
                                          const Wide<float, N>& b) {
  Wide<float, N> out;
#pragma GCC unroll 4
  for (int p = 0; p < Wide<float, N>::kParts; ++p) out.part[p] = mask.part[p] ? a.part[p] : b.part[p];
  return out;
}

// Whether any lane of a mask is set.
template <typename M>
KVSAFE_LANES_INLINE bool any(const Wide<std::int32_t, M>& mask) {
  M all = mask.part[0];
#pragma GCC unroll 4
  for (int p = 1; p < Wide<std::int32_t, M>::kParts; ++p) all |= mask.part[p];
  for (int lane = 0; lane < Wide<std::int32_t, M>::kWidth; ++lane) {
    if (all[lane] != 0) return true;
  }
  return false;
}

// Int lanes to float (exact below 2^24) and float lanes to int (truncated), as
// __builtin_convertvector.
template <typename L>
KVSAFE_LANES_INLINE typename L::F to_float(const typename L::I& v) {
  typename L::F out;
#pragma GCC unroll 4
  for (int p = 0; p < L::F::kParts; ++p) {
    out.part[p] = __builtin_convertvector(v.part[p], decltype(out.part[0] + 0.0f));
  }
  return out;
}
template <typename L>
KVSAFE_LANES_INLINE typename L::I to_int(const typename L::F& v) {
  typename L::I out;
#pragma GCC unroll 4
  for (int p = 0; p < L::I::kParts; ++p) {
    out.part[p] = __builtin_convertvector(v.part[p], decltype(out.part[0] + 0));
  }
  return out;
}
// The same bits read as the other type.
template <typename L>
KVSAFE_LANES_INLINE typename L::F bits_as_float(const typename L::I& v) {
  typename L::F out;
  static_assert(sizeof(out.part[0]) == sizeof(v.part[0]));
#pragma GCC unroll 4
  for (int p = 0; p < L::F::kParts; ++p) std::memcpy(&out.part[p], &v.part[p], sizeof(out.part[p]));
  return out;
}

// Sixteen lanes from memory at p (any alignment), and back.
// NOTE: one memcpy per native part. A memcpy of the whole struct went through the stack as
// 16-byte pieces and kept every accumulator it touched in memory; a native vector's memcpy is
// one vector load or store.
template <typename W>
KVSAFE_LANES_INLINE W load(const void* p) {
  W v;
#pragma GCC unroll 4
  for (int i = 0; i < W::kParts; ++i) {
    std::memcpy(&v.part[i], static_cast<const char*>(p) + i * sizeof(v.part[0]), sizeof(v.part[0]));
  }
  return v;
}
template <typename W>
KVSAFE_LANES_INLINE void store(void* p, const W& v) {
#pragma GCC unroll 4
  for (int i = 0; i < W::kParts; ++i) {
    std::memcpy(static_cast<char*>(p) + i * sizeof(v.part[0]), &v.part[i], sizeof(v.part[0]));
  }
}

// The sum of the sixteen lanes in one fixed tree, whatever the part width:
// s8[i] = v[i] + v[i + 8], s4[i] = s8[i] + s8[i + 4], then (s4[0] + s4[2]) + (s4[1] + s4[3]).
template <typename N>
KVSAFE_LANES_INLINE float lane_sum(const Wide<float, N>& v) {
  constexpr int kParts = Wide<float, N>::kParts;
  Floats4 s4;
  if constexpr (kParts == 1) {
    Floats8 lo, hi;
    std::memcpy(&lo, &v.part[0], sizeof(lo));
    std::memcpy(&hi, reinterpret_cast<const char*>(&v.part[0]) + sizeof(lo), sizeof(hi));
    const Floats8 s8 = lo + hi;
    Floats4 a, b;
    std::memcpy(&a, &s8, sizeof(a));
    std::memcpy(&b, reinterpret_cast<const char*>(&s8) + sizeof(a), sizeof(b));
    s4 = a + b;
  } else if constexpr (kParts == 2) {
    const Floats8 s8 = v.part[0] + v.part[1];
    Floats4 a, b;
    std::memcpy(&a, &s8, sizeof(a));
    std::memcpy(&b, reinterpret_cast<const char*>(&s8) + sizeof(a), sizeof(b));
    s4 = a + b;
  } else {
    static_assert(kParts == 4);
    s4 = (v.part[0] + v.part[2]) + (v.part[1] + v.part[3]);
  }
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// The largest lane, taken lane 0 to 15 with std::max (a NaN lane counts as it does there).
template <typename N>
KVSAFE_LANES_INLINE float lane_max(const Wide<float, N>& v) {
  float m = v[0];
  for (int i = 1; i < 16; ++i) m = std::max(m, v[i]);
  return m;
}

// e^x on sixteen lanes, to about 2 ulp (Cephes' expf scheme: x = n ln2 + r with |r| <= ln2/2,
// a degree-6 polynomial for e^r, 2^n put into the exponent bits). Below -87.3 (e^x under the
// smallest normal float, -inf included) it is exactly 0, so masked scores get probability 0
// as with ATen's softmax. Above 88.376 it saturates at e^88.376 (~2.4e38): 2^n must stay a
// normal float (n <= 127), or the exponent bits would spell +inf. NaN stays NaN.
template <typename L>
KVSAFE_LANES_INLINE typename L::F exp16(const typename L::F& in) {
  using F = typename L::F;
  constexpr float kLowest = -87.33654f, kHighest = 88.3762626f;
  const auto underflow = in < kLowest;
  F x = select(underflow, F::splat(kLowest), in);
  x = select(x > kHighest, F::splat(kHighest), x);
  // n = round(x / ln2), by adding and subtracting 1.5 * 2^23 (|x / ln2| < 2^22).
  constexpr float kRound = 12582912.0f;
  const F n = (x * 1.44269504088896341f + kRound) - kRound;
  const F r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // ln2 split for exactness
  F p = F::splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const F y = p * r * r + r + 1.0f;
  const typename L::I exponent = (to_int<L>(n) + 127) << 23;
  return select(underflow, F::zero(), y * bits_as_float<L>(exponent));
}

#undef KVSAFE_LANES_INLINE

}  // namespace kvsafe::engine::lanes

// The target attributes of the AVX-512 and AVX2 copies. A copy is a function (or a static
// member template) with one of these, whose body calls a kernel body template with the
// matching lane set; the attribute cannot be a template argument, so each file spells out its
// copies. Every kernel picks its copy with pick_copy() below.
#if defined(__x86_64__) && defined(__GNUC__)
#define KVSAFE_TARGET_AVX512 [[gnu::target("avx512f,fma")]]
#define KVSAFE_TARGET_AVX2 [[gnu::target("avx2,fma")]]
#else
// Elsewhere the three copies compile for the default target and only the generic one runs
// (common/cpu_kernels.h: such a CPU runs kGeneric alone), so no kernel file needs a guard.
#define KVSAFE_TARGET_AVX512
#define KVSAFE_TARGET_AVX2
#endif

namespace kvsafe::engine::lanes {

// One thing per copy of a kernel (a function, a table of them).
template <typename T>
struct Copies {
  T avx512;
  T avx2;
  T generic;
};

// The entry of `copies` for the copy common/cpu_kernels.h chose.
template <typename T>
T pick_copy(const Copies<T>& copies) {
  switch (active_cpu_kernels()) {
    case CpuKernels::kAvx512:
      return copies.avx512;
    case CpuKernels::kAvx2:
      return copies.avx2;
    case CpuKernels::kGeneric:
      break;
  }
  return copies.generic;
}

}  // namespace kvsafe::engine::lanes
