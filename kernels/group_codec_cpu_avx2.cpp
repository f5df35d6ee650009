// AVX2 paths of the CPU group codec: see group_codec_cpu_avx2.h. Every lane runs the
// reference's float32 operations (group_codec_impl.h, quant_math.h) in the same order, so
// results match bit for bit; scalar work that happens once per group (min/max ties, the
// scale) follows the reference too.
//
// Codes are computed eight at a time as int32 lanes; eight codes of `bits` bits are exactly
// `bits` bytes, so each chunk of eight starts on a byte boundary, is packed into one 64-bit
// word with shifts (no pdep/pext: microcoded and slow on AMD before Zen 3) and stored without
// touching another group's bytes.

#include "kernels/group_codec_cpu_avx2.h"

#include <algorithm>
#include <cstring>

#include "kernels/group_codec_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KVSAFE_AVX2 1
#endif

namespace kvsafe::kernels::detail {

#if defined(KVSAFE_AVX2)

#define KVSAFE_TARGET __attribute__((target("avx2,f16c")))

namespace {

constexpr std::int64_t kBlock = 8;        // groups per block of quantize_groups_avx2
constexpr std::int64_t kAheadBlocks = 2;  // blocks prefetched ahead
constexpr float kMagic = 12582912.0f;     // 1.5 * 2^23, as math::round_half_even

// Lanes [0, n) of eight (all for n >= 8), as a mask for maskload / maskstore.
KVSAFE_TARGET inline __m256i lanes(int n) {
  const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n < 8 ? n : 8), index);
}

// Up to eight floats from x (lanes past n read as 0 and never touch memory).
KVSAFE_TARGET inline __m256 load_floats(const float* x, int n) {
  return n >= 8 ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, lanes(n));
}

// math::round_half_even, eight lanes: (v + m) - m, two separately rounded operations.
KVSAFE_TARGET inline __m256 round_half_even(__m256 v) {
  const __m256 m = _mm256_set1_ps(kMagic);
  return _mm256_sub_ps(_mm256_add_ps(v, m), m);
}

// math::clampf for non-NaN lanes. NOTE: only the sign of a zero can differ from the
// reference (max/min pick an operand for +-0 ties), and every caller rounds next, which
// turns -0 into +0 in both.
KVSAFE_TARGET inline __m256 clamp(__m256 v, __m256 lo, __m256 hi) {
  return _mm256_min_ps(_mm256_max_ps(v, lo), hi);
}

KVSAFE_TARGET inline float reduce(__m256 v, bool take_max) {
  __m128 a = _mm256_castps256_ps128(v), b = _mm256_extractf128_ps(v, 1);
  a = take_max ? _mm_max_ps(a, b) : _mm_min_ps(a, b);
  b = _mm_movehl_ps(a, a);
  a = take_max ? _mm_max_ps(a, b) : _mm_min_ps(a, b);
  b = _mm_shuffle_ps(a, a, 1);
  a = take_max ? _mm_max_ss(a, b) : _mm_min_ss(a, b);
  return _mm_cvtss_f32(a);
}

// The first element equal to `v`: the reference's strict-compare min/max loops keep the
// first of equal candidates, which only matters for the sign of a zero.
inline float first_equal(const float* x, int n, float v) {
  for (int i = 0; i < n; ++i) {
    if (x[i] == v) return x[i];
  }
  return v;
}

KVSAFE_TARGET void min_max(const float* x, int n, float* lo, float* hi) {
  const __m256 first = _mm256_set1_ps(x[0]);
  __m256 mn = first, mx = first;
  for (int i = 0; i < n; i += 8) {
    // Lanes past the group repeat x[0], which changes neither the minimum nor the maximum.
    const __m256 v = n - i >= 8 ? _mm256_loadu_ps(x + i)
                                : _mm256_blendv_ps(first, load_floats(x + i, n - i), _mm256_castsi256_ps(lanes(n - i)));
    mn = _mm256_min_ps(mn, v);
    mx = _mm256_max_ps(mx, v);
  }
  *lo = reduce(mn, false);
  *hi = reduce(mx, true);
  if (*lo == 0.0f) *lo = first_equal(x, n, 0.0f);
  if (*hi == 0.0f) *hi = first_equal(x, n, 0.0f);
}

KVSAFE_TARGET float abs_max(const float* x, int n) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 mx = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) mx = _mm256_max_ps(mx, _mm256_and_ps(load_floats(x + i, n - i), abs_mask));
  return reduce(mx, true);
}

// The first n (0..8) bytes at src as a little-endian word, and a word's first n bytes to dst.
// NOTE: built from constant-size loads and stores in registers. A memcpy of a run-time length
// is a call into libc (unpacking int2 codes was slower than the scalar reference), and a
// narrow copy into a word on the stack read back whole stalls on store forwarding.
inline std::uint64_t load_bytes(const std::uint8_t* src, int n) {
  std::uint32_t lo = 0;
  std::uint16_t mid = 0;
  std::uint64_t all = 0;
  switch (n) {
    case 8:
      std::memcpy(&all, src, 8);
      return all;
    case 7:
      std::memcpy(&lo, src, 4);
      std::memcpy(&mid, src + 4, 2);
      return lo | std::uint64_t{mid} << 32 | std::uint64_t{src[6]} << 48;
    case 6:
      std::memcpy(&lo, src, 4);
      std::memcpy(&mid, src + 4, 2);
      return lo | std::uint64_t{mid} << 32;
    case 5:
      std::memcpy(&lo, src, 4);
      return lo | std::uint64_t{src[4]} << 32;
    case 4:
      std::memcpy(&lo, src, 4);
      return lo;
    case 3:
      std::memcpy(&mid, src, 2);
      return mid | std::uint64_t{src[2]} << 16;
    case 2:
      std::memcpy(&mid, src, 2);
      return mid;
    case 1:
      return src[0];
    default:
      return 0;
  }
}

inline void store_bytes(std::uint8_t* dst, std::uint64_t word, int n) {
  const auto lo = static_cast<std::uint32_t>(word);
  const auto mid = static_cast<std::uint16_t>(word >> 32);
  switch (n) {
    case 8:
      std::memcpy(dst, &word, 8);
      return;
    case 7:
      std::memcpy(dst, &lo, 4);
      std::memcpy(dst + 4, &mid, 2);
      dst[6] = static_cast<std::uint8_t>(word >> 48);
      return;
    case 6:
      std::memcpy(dst, &lo, 4);
      std::memcpy(dst + 4, &mid, 2);
      return;
    case 5:
      std::memcpy(dst, &lo, 4);
      dst[4] = static_cast<std::uint8_t>(word >> 32);
      return;
    case 4:
      std::memcpy(dst, &lo, 4);
      return;
    case 3:
      std::memcpy(dst, &lo, 2);
      dst[2] = static_cast<std::uint8_t>(word >> 16);
      return;
    case 2:
      std::memcpy(dst, &lo, 2);
      return;
    case 1:
      dst[0] = static_cast<std::uint8_t>(word);
      return;
    default:
      return;
  }
}

// Eight codes (int32 lanes, zero past the group) -> the first ceil(n * bits / 8) bytes at
// dst, least significant bit first; writes no other byte.
KVSAFE_TARGET inline void pack_store(__m256i codes, int n, int bits, std::uint8_t* dst) {
  alignas(32) std::uint32_t c[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(c), codes);
  std::uint64_t word = 0;
  for (int i = 0; i < 8; ++i) word |= static_cast<std::uint64_t>(c[i]) << (i * bits);
  store_bytes(dst, word, (std::min(n, 8) * bits + 7) / 8);
}

// Inverse of pack_store: eight codes from ceil(n * bits / 8) bytes at src (no byte past them
// is read); lanes past n hold garbage, callers mask them.
KVSAFE_TARGET inline __m256i load_unpack(const std::uint8_t* src, int n, int bits) {
  const std::uint64_t word = load_bytes(src, (std::min(n, 8) * bits + 7) / 8);
  if (bits * 8 <= 32) {  // all eight codes in the low word: one variable shift per lane
    const __m256i shifts = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(bits));
    const __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shifts);
    return _mm256_and_si256(v, _mm256_set1_epi32((1 << bits) - 1));
  }
  alignas(32) std::uint32_t c[8];
  const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
  for (int i = 0; i < 8; ++i) c[i] = static_cast<std::uint32_t>((word >> (i * bits)) & mask);
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(c));
}

// Prefetches x[from, to) into L1, one cache line per 16 floats.
[[gnu::always_inline]] KVSAFE_TARGET inline void prefetch_floats(const float* x, std::int64_t from, std::int64_t to) {
  for (std::int64_t i = from; i < to; i += 16) _mm_prefetch(reinterpret_cast<const char*>(x + i), _MM_HINT_T0);
}

// store_scale / load_scale of group_codec_impl.h with F16C's conversions (round to nearest
// even): the same bits as the reference's for every non-NaN float after its saturation and
// for all 65536 halves, as in the AVX-512 path.
KVSAFE_TARGET inline float store_scale_f16c(void* base, std::int64_t g, float v, bool fp32) {
  if (fp32) return store_scale(base, g, v, true);
  const float sat = math::clampf(v, -kHalfMax, kHalfMax);
  const auto h = static_cast<std::uint16_t>(_cvtss_sh(sat, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  static_cast<std::uint16_t*>(base)[g] = h;
  return _cvtsh_ss(h);
}

KVSAFE_TARGET inline float load_scale_f16c(const void* base, std::int64_t g, bool fp32) {
  if (fp32) return load_scale(base, g, true);
  return _cvtsh_ss(static_cast<const std::uint16_t*>(base)[g]);
}

// ---- integer codecs -------------------------------------------------------------------

// Statistics and stored scale (and zero) of one integer group; returns the scale the codes
// divide by (the fp16-rounded one unless fp32_scales) and sets *shift (asym: the stored min).
KVSAFE_TARGET float int_group_scale(const float* x, const CodecParams& p, std::int64_t g, void* scales, void* zeros,
                                    float* shift) {
  const int n = p.group_len;
  if (p.codec == Codec::kIntAsym) {
    float mn = 0.0f, mx = 0.0f;
    min_max(x, n, &mn, &mx);
    const float qmax = static_cast<float>((1 << p.bits) - 1);
    const float s = store_scale_f16c(scales, g, (mx - mn) / qmax, p.fp32_scales);
    *shift = store_scale_f16c(zeros, g, mn, p.fp32_scales);
    return s;
  }
  *shift = 0.0f;
  const float qmax = static_cast<float>((1 << (p.bits - 1)) - 1);
  return store_scale_f16c(scales, g, abs_max(x, n) / qmax, p.fp32_scales);
}

// Codes of one integer group given its scale (int_group_scale).
KVSAFE_TARGET void code_int_group(const float* x, const CodecParams& p, float s, float shift, std::uint8_t* codes) {
  const int n = p.group_len;
  const bool asym = p.codec == Codec::kIntAsym;
  const float hi = static_cast<float>(asym ? (1 << p.bits) - 1 : (1 << (p.bits - 1)) - 1);
  const float lo = asym ? 0.0f : -static_cast<float>(1 << (p.bits - 1));
  // Asym: q = round(clamp((x - m) / s, 0, qmax)); a constant group (s == 0) codes 0.
  // Sym: q = round(clamp(x / s, qmin, qmax)) + 2^(bits-1); s == 0 codes 2^(bits-1).
  const bool zero_scale = !(s > 0.0f);
  const __m256 vs = _mm256_set1_ps(s), vshift = _mm256_set1_ps(shift);
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  const __m256i offset = _mm256_set1_epi32(asym ? 0 : 1 << (p.bits - 1));
  for (int c0 = 0; c0 < n; c0 += 8) {
    const int m = n - c0;
    __m256i c = offset;
    if (!zero_scale) {
      __m256 v = load_floats(x + c0, m);
      if (asym) v = _mm256_sub_ps(v, vshift);
      v = round_half_even(clamp(_mm256_div_ps(v, vs), vlo, vhi));
      c = _mm256_add_epi32(_mm256_cvttps_epi32(v), offset);
    }
    if (m < 8) c = _mm256_and_si256(c, lanes(m));  // codes past the group stay 0
    pack_store(c, m, p.bits, codes + c0 / 8 * p.bits);
  }
}

KVSAFE_TARGET void dequantize_int_group(const std::uint8_t* codes, const void* scales, const void* zeros,
                                        const CodecParams& p, std::int64_t g, float* out) {
  const int n = p.group_len;
  const bool asym = p.codec == Codec::kIntAsym;
  const __m256 vs = _mm256_set1_ps(load_scale_f16c(scales, g, p.fp32_scales));
  const __m256 vm = _mm256_set1_ps(asym ? load_scale_f16c(zeros, g, p.fp32_scales) : 0.0f);
  const __m256i offset = _mm256_set1_epi32(asym ? 0 : 1 << (p.bits - 1));
  for (int c0 = 0; c0 < n; c0 += 8) {
    const int m = n - c0;
    const __m256 q = _mm256_cvtepi32_ps(_mm256_sub_epi32(load_unpack(codes + c0 / 8 * p.bits, m, p.bits), offset));
    // Asym: t = q * s; x^ = t + m (two roundings). Sym: x^ = (code - 2^(b-1)) * s.
    __m256 v = _mm256_mul_ps(q, vs);
    if (asym) v = _mm256_add_ps(v, vm);
    if (m >= 8) {
      _mm256_storeu_ps(out + c0, v);
    } else {
      _mm256_maskstore_ps(out + c0, lanes(m), v);
    }
  }
}

// ---- fp8 ------------------------------------------------------------------------------

// math::fp8_encode of v / scale, eight lanes.
KVSAFE_TARGET void quantize_fp8_group(const float* x, const CodecParams& p, std::uint8_t* codes) {
  const math::Fp8Format f = math::fp8_format(p.codec == Codec::kFp8E4M3);
  const int drop = 23 - f.mant_bits;
  const __m256 scale = _mm256_set1_ps(p.fp8_scale);
  const __m256 max_finite = _mm256_set1_ps(f.max_finite);
  const __m256 inv_q = _mm256_set1_ps(f.subnormal_inv_q);
  const __m256i max_code = _mm256_set1_epi32(f.max_code);
  const __m256i min_normal = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(127 - f.bias + 1) << 23));
  const __m256i round_bias = _mm256_set1_epi32(static_cast<int>((1u << (drop - 1)) - 1u));
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i rebias = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(127 - f.bias) << f.mant_bits));
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256i sign_bit = _mm256_set1_epi32(0x80);
  const __m128i vdrop = _mm_cvtsi32_si128(drop);
  const int n = p.group_len;
  for (int i = 0; i < n; i += 8) {
    const __m256 v = _mm256_div_ps(load_floats(x + i, n - i), scale);
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(bits, 24), sign_bit);
    const __m256i abs = _mm256_and_si256(bits, abs_mask);
    const __m256 a = _mm256_castsi256_ps(abs);
    // Normal: round the mantissa to mant_bits, half to even, rebias, cap at max_code.
    const __m256i odd = _mm256_and_si256(_mm256_srl_epi32(abs, vdrop), one);
    const __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(abs, round_bias), odd);
    __m256i code = _mm256_min_epu32(_mm256_sub_epi32(_mm256_srl_epi32(rounded, vdrop), rebias), max_code);
    // Subnormal: round(a / quantum) (a * 2^k is exact); abs < min_normal, both below 2^31.
    const __m256i sub = _mm256_cmpgt_epi32(min_normal, abs);
    code = _mm256_blendv_epi8(code, _mm256_cvttps_epi32(round_half_even(_mm256_mul_ps(a, inv_q))), sub);
    // Saturate: !(a < max_finite), infinities included.
    const __m256i sat = _mm256_castps_si256(_mm256_cmp_ps(a, max_finite, _CMP_NLT_UQ));
    code = _mm256_blendv_epi8(code, max_code, sat);
    alignas(32) std::uint32_t c[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(c), _mm256_or_si256(code, sign));
    const int m = std::min(n - i, 8);
    for (int j = 0; j < m; ++j) codes[i + j] = static_cast<std::uint8_t>(c[j]);
  }
}

// math::fp8_decode(c) * scale, eight lanes.
KVSAFE_TARGET void dequantize_fp8_group(const std::uint8_t* codes, const CodecParams& p, float* out) {
  const math::Fp8Format f = math::fp8_format(p.codec == Codec::kFp8E4M3);
  const __m256 scale = _mm256_set1_ps(p.fp8_scale);
  // NOTE: the reference divides by subnormal_inv_q (a power of two); mant / 2^k and
  // mant * 2^-k are the same exact value.
  const __m256 quantum = _mm256_set1_ps(1.0f / f.subnormal_inv_q);
  const __m256i mant_mask = _mm256_set1_epi32((1 << f.mant_bits) - 1);
  const __m256i exp_bias = _mm256_set1_epi32(127 - f.bias);
  const std::uint32_t max_exp = (1u << (7 - f.mant_bits)) - 1u;
  const __m256i vmax_exp = _mm256_set1_epi32(static_cast<int>(max_exp));
  const __m128i vmant = _mm_cvtsi32_si128(f.mant_bits);
  const __m128i vmant_shift = _mm_cvtsi32_si128(23 - f.mant_bits);
  const bool e4m3 = f.mant_bits == 3;
  const int n = p.group_len;
  for (int i = 0; i < n; i += 8) {
    const int m = std::min(n - i, 8);
    const std::uint64_t bytes = load_bytes(codes + i, m);
    const __m256i c = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes)));
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x80)), 24);
    const __m256i exp = _mm256_srl_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x7f)), vmant);
    const __m256i mant = _mm256_and_si256(c, mant_mask);
    __m256i v =
        _mm256_or_si256(_mm256_slli_epi32(_mm256_add_epi32(exp, exp_bias), 23), _mm256_sll_epi32(mant, vmant_shift));
    const __m256i sub = _mm256_cmpeq_epi32(exp, _mm256_setzero_si256());
    v = _mm256_blendv_epi8(v, _mm256_castps_si256(_mm256_mul_ps(_mm256_cvtepi32_ps(mant), quantum)), sub);
    const __m256i top = _mm256_cmpeq_epi32(exp, vmax_exp);
    if (e4m3) {
      const __m256i nan = _mm256_and_si256(top, _mm256_cmpeq_epi32(mant, mant_mask));
      v = _mm256_blendv_epi8(v, _mm256_set1_epi32(0x7fc00000), nan);
    } else {
      const __m256i nan = _mm256_andnot_si256(_mm256_cmpeq_epi32(mant, _mm256_setzero_si256()), top);
      v = _mm256_blendv_epi8(v, _mm256_set1_epi32(0x7f800000), top);
      v = _mm256_blendv_epi8(v, _mm256_set1_epi32(0x7fc00000), nan);
    }
    const __m256 value = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_or_si256(v, sign)), scale);
    if (m == 8) {
      _mm256_storeu_ps(out + i, value);
    } else {
      _mm256_maskstore_ps(out + i, lanes(m), value);
    }
  }
}

}  // namespace

KVSAFE_TARGET void quantize_groups_avx2(const float* x, const CodecParams& p, std::int64_t begin, std::int64_t end,
                                        std::uint8_t* codes, void* scales, void* zeros) {
  const std::int64_t cb = codes_bytes(p);
  const bool fp8 = p.codec == Codec::kFp8E4M3 || p.codec == Codec::kFp8E5M2;
  // Blocks of groups, each prefetching the groups kAheadBlocks blocks ahead, as the AVX-512
  // path does (its NOTE has the measurements).
  // NOTE: this driver and int_group_scale repeat the AVX-512 file's on purpose. A shared
  // template would have to call each path's always-inline helpers of another target from a
  // default-target body, which GCC refuses (target specific option mismatch), and a helper
  // left out of line loses its prefetches (GCC deletes calls to a function with no side
  // effects; see the AVX-512 file).
  const auto ahead = [&](std::int64_t g0, std::int64_t blocks) {
    return std::min(end, g0 + blocks * kBlock) * p.group_len;
  };
  if (fp8) {
    for (std::int64_t g0 = begin; g0 < end; g0 += kBlock) {
      prefetch_floats(x, ahead(g0, kAheadBlocks), ahead(g0, kAheadBlocks + 1));
      for (std::int64_t g = g0; g < std::min(end, g0 + kBlock); ++g) {
        quantize_fp8_group(x + g * p.group_len, p, codes + g * cb);
      }
    }
    return;
  }
  // Integer groups: every group's statistics in a block first, then every group's codes, so
  // that the statistics -> scale -> codes chains of neighbouring groups overlap.
  float s[kBlock], shift[kBlock];
  for (std::int64_t g0 = begin; g0 < end; g0 += kBlock) {
    const std::int64_t g1 = std::min(end, g0 + kBlock);
    prefetch_floats(x, ahead(g0, kAheadBlocks), ahead(g0, kAheadBlocks + 1));
    for (std::int64_t g = g0; g < g1; ++g) {
      s[g - g0] = int_group_scale(x + g * p.group_len, p, g, scales, zeros, &shift[g - g0]);
    }
    for (std::int64_t g = g0; g < g1; ++g) {
      code_int_group(x + g * p.group_len, p, s[g - g0], shift[g - g0], codes + g * cb);
    }
  }
}

KVSAFE_TARGET void dequantize_groups_avx2(const std::uint8_t* codes, const void* scales, const void* zeros,
                                          const CodecParams& p, std::int64_t begin, std::int64_t end, float* out) {
  const std::int64_t cb = codes_bytes(p);
  const bool fp8 = p.codec == Codec::kFp8E4M3 || p.codec == Codec::kFp8E5M2;
  for (std::int64_t g = begin; g < end; ++g) {
    if (fp8) {
      dequantize_fp8_group(codes + g * cb, p, out + g * p.group_len);
    } else {
      dequantize_int_group(codes + g * cb, scales, zeros, p, g, out + g * p.group_len);
    }
  }
}

#else  // not x86-64 GCC/Clang: the scalar reference only

void quantize_groups_avx2(const float*, const CodecParams&, std::int64_t, std::int64_t, std::uint8_t*, void*, void*) {}
void dequantize_groups_avx2(const std::uint8_t*, const void*, const void*, const CodecParams&, std::int64_t,
                            std::int64_t, float*) {}

#endif

}  // namespace kvsafe::kernels::detail
