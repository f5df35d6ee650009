// AVX-512 paths of the CPU group codec: see group_codec_cpu_avx512.h. Every lane runs the
// reference's float32 operations (group_codec_impl.h, quant_math.h) in the same order, so
// results match bit for bit; scalar work that happens once per group (min/max ties, fp16
// scales) calls the reference functions themselves.
//
// Codes are computed sixteen at a time into a byte per code, in chunks of 64 elements held
// in one register, then packed there (maddubs for 4 and 2 bits, pext for the odd widths)
// and stored with byte masks: a chunk of 64 codes is exactly 8 * bits bytes, so chunks
// start on byte boundaries for every width and no store touches another group's bytes.

// NOTE: GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() and trip
// -Wmaybe-uninitialized inside its own headers (GCC bug 105593); the pragma comes before
// any include so that it covers them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/group_codec_cpu_avx512.h"

#include <algorithm>
#include <cstring>

#include "kernels/group_codec_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KVSAFE_AVX512 1
#endif

namespace kvsafe::kernels::detail {

#if defined(KVSAFE_AVX512)

#define KVSAFE_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,bmi2,f16c")))

namespace {

constexpr int kChunk = 64;                // elements per packing chunk
constexpr std::int64_t kBlock = 8;        // groups per block of quantize_groups_avx512
constexpr std::int64_t kAheadBlocks = 2;  // blocks prefetched ahead
constexpr float kMagic = 12582912.0f;     // 1.5 * 2^23, as math::round_half_even
constexpr std::uint32_t kSignMask = 0x7fffffffu;

KVSAFE_TARGET inline __mmask16 lanes(int n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// math::round_half_even, sixteen lanes: (v + m) - m, two separately rounded operations.
KVSAFE_TARGET inline __m512 round_half_even(__m512 v) {
  const __m512 m = _mm512_set1_ps(kMagic);
  return _mm512_sub_ps(_mm512_add_ps(v, m), m);
}

// math::clampf for non-NaN lanes. NOTE: only the sign of a zero can differ from the
// reference (max/min pick an operand for +-0 ties), and every caller rounds next, which
// turns -0 into +0 in both.
KVSAFE_TARGET inline __m512 clamp(__m512 v, __m512 lo, __m512 hi) {
  return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
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
  const __m512 first = _mm512_set1_ps(x[0]);
  __m512 mn = first, mx = first;
  for (int i = 0; i < n; i += 16) {
    const __m512 v = _mm512_mask_loadu_ps(first, lanes(n - i), x + i);
    mn = _mm512_min_ps(mn, v);
    mx = _mm512_max_ps(mx, v);
  }
  *lo = _mm512_reduce_min_ps(mn);
  *hi = _mm512_reduce_max_ps(mx);
  if (*lo == 0.0f) *lo = first_equal(x, n, 0.0f);
  if (*hi == 0.0f) *hi = first_equal(x, n, 0.0f);
}

KVSAFE_TARGET float abs_max(const float* x, int n) {
  __m512 mx = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes(n - i), x + i)));
  }
  return _mm512_reduce_max_ps(mx);
}

// Byte mask of the first n (<= 64) bytes.
inline __mmask64 first_bytes(int n) {
  return n >= 64 ? ~0ull : (1ull << n) - 1ull;
}

// pext/pdep mask of eight codes of `bits` bits, one per byte.
inline std::uint64_t byte_fields(int bits) {
  return 0x0101010101010101ull * ((1ull << bits) - 1ull);
}

// Packs 64 codes (one per byte of `c`, zero past the group) into the first
// ceil(n * bits / 8) bytes at dst, least significant bit first; writes no other byte.
KVSAFE_TARGET void pack_store(__m512i c, int n, int bits, std::uint8_t* dst) {
  const int nbytes = (n * bits + 7) / 8;
  switch (bits) {
    case 8:
      _mm512_mask_storeu_epi8(dst, first_bytes(nbytes), c);
      return;
    case 4: {
      // Byte pairs (even, odd) -> even + 16 * odd, then 16-bit lanes down to bytes.
      const __m512i w = _mm512_maddubs_epi16(c, _mm512_set1_epi16(0x1001));
      _mm256_mask_storeu_epi8(dst, static_cast<__mmask32>(first_bytes(nbytes)), _mm512_cvtepi16_epi8(w));
      return;
    }
    case 2: {
      const __m512i w = _mm512_maddubs_epi16(c, _mm512_set1_epi16(0x0401));   // c0 + 4 c1
      const __m512i d = _mm512_madd_epi16(w, _mm512_set1_epi32(0x00100001));  // + 16 (c2 + 4 c3)
      _mm_mask_storeu_epi8(dst, static_cast<__mmask16>(first_bytes(nbytes)), _mm512_cvtepi32_epi8(d));
      return;
    }
    default: {
      // Eight codes (one 64-bit lane) -> `bits` bytes: pext keeps the low `bits` of each byte.
      alignas(64) std::uint64_t words[8];
      _mm512_store_si512(words, c);
      const std::uint64_t fields = byte_fields(bits);
      for (int k = 0; k * bits < nbytes; ++k) {
        const std::uint64_t w = _pext_u64(words[k], fields);
        const int left = nbytes - k * bits;
        const auto keep = static_cast<__mmask16>(first_bytes(left < bits ? left : bits));
        _mm_mask_storeu_epi8(dst + k * bits, keep, _mm_cvtsi64_si128(static_cast<long long>(w)));
      }
      return;
    }
  }
}

// Inverse of pack_store: ceil(n * bits / 8) bytes at src (no byte past them is read) -> one
// code per byte (bytes past n hold garbage or zero; callers mask them).
KVSAFE_TARGET __m512i load_unpack(const std::uint8_t* src, int n, int bits) {
  const int nbytes = (n * bits + 7) / 8;
  switch (bits) {
    case 8:
      return _mm512_maskz_loadu_epi8(first_bytes(nbytes), src);
    case 4: {
      const __m256i b = _mm256_maskz_loadu_epi8(static_cast<__mmask32>(first_bytes(nbytes)), src);
      const __m512i w = _mm512_cvtepu8_epi16(b);
      const __m512i lo = _mm512_and_si512(w, _mm512_set1_epi16(0x0f));
      const __m512i hi = _mm512_slli_epi16(_mm512_srli_epi16(w, 4), 8);
      return _mm512_or_si512(lo, hi);
    }
    case 2: {
      const __m128i b = _mm_maskz_loadu_epi8(static_cast<__mmask16>(first_bytes(nbytes)), src);
      const __m512i d = _mm512_cvtepu8_epi32(b);
      const __m512i three = _mm512_set1_epi32(3);
      __m512i c = _mm512_and_si512(d, three);
      c = _mm512_or_si512(c, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(d, 2), three), 8));
      c = _mm512_or_si512(c, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(d, 4), three), 16));
      return _mm512_or_si512(c, _mm512_slli_epi32(_mm512_srli_epi32(d, 6), 24));
    }
    default: {
      alignas(64) std::uint64_t words[8] = {};
      const std::uint64_t fields = byte_fields(bits);
      for (int k = 0; k * bits < nbytes; ++k) {
        const int left = nbytes - k * bits;
        const auto keep = static_cast<__mmask16>(first_bytes(left < bits ? left : bits));
        const auto w = static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm_maskz_loadu_epi8(keep, src + k * bits)));
        words[k] = _pdep_u64(w, fields);
      }
      return _mm512_load_si512(words);
    }
  }
}

// Four vectors of sixteen codes (int32 lanes, 0..255) -> 64 bytes in element order. The
// saturating packs work within 128-bit lanes, leaving dword 4L + j = codes 4L..4L+3 of
// q[j]; one dword permutation restores the order.
KVSAFE_TARGET inline __m512i bytes_of(const __m512i* q) {
  const __m512i b = _mm512_packus_epi16(_mm512_packus_epi32(q[0], q[1]), _mm512_packus_epi32(q[2], q[3]));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_epi32(order, b);
}

// Bytes 16j .. 16j+15 of a 64-byte vector as int32 lanes.
KVSAFE_TARGET inline __m512i extract_codes(__m512i all, int j) {
  switch (j) {
    case 0:
      return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(all, 0));
    case 1:
      return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(all, 1));
    case 2:
      return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(all, 2));
    default:
      return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(all, 3));
  }
}

// Up to sixteen code bytes (lanes of k; a masked load never touches bytes past them).
KVSAFE_TARGET inline __m512i load_codes(const std::uint8_t* src, __mmask16 k) {
  return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, src));
}

// Prefetches x[from, to) into L1, one cache line per 16 floats.
[[gnu::always_inline]] KVSAFE_TARGET inline void prefetch_floats(const float* x, std::int64_t from, std::int64_t to) {
  for (std::int64_t i = from; i < to; i += 16) _mm_prefetch(reinterpret_cast<const char*>(x + i), _MM_HINT_T0);
}

// store_scale / load_scale of group_codec_impl.h with the CPU's fp16 conversions (F16C,
// round to nearest even) instead of the reference's bit manipulation: the same bits for every
// non-NaN float after the reference's saturation and for all 65536 halves (checked
// exhaustively once; tests/kernels compare the codec with the reference). Inputs are finite
// (kv_quant.h checks), so no NaN reaches them. About a third of an int4 asym group's
// instructions were the two software conversions.
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
  const __m512 vs = _mm512_set1_ps(s), vshift = _mm512_set1_ps(shift);
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  const __m512i offset = _mm512_set1_epi32(asym ? 0 : 1 << (p.bits - 1));
  for (int c0 = 0; c0 < n; c0 += kChunk) {
    const int m = n - c0 < kChunk ? n - c0 : kChunk;
    __m512i q[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int j = 0; 16 * j < m; ++j) {
      const __mmask16 k = lanes(m - 16 * j);
      __m512i c = offset;
      if (!zero_scale) {
        __m512 v = _mm512_maskz_loadu_ps(k, x + c0 + 16 * j);
        if (asym) v = _mm512_sub_ps(v, vshift);
        v = round_half_even(clamp(_mm512_div_ps(v, vs), vlo, vhi));
        c = _mm512_add_epi32(_mm512_cvttps_epi32(v), offset);
      }
      q[j] = _mm512_maskz_mov_epi32(k, c);  // codes past the group stay 0
    }
    pack_store(bytes_of(q), m, p.bits, codes + c0 / 8 * p.bits);
  }
}

KVSAFE_TARGET void dequantize_int_group(const std::uint8_t* codes, const void* scales, const void* zeros,
                                        const CodecParams& p, std::int64_t g, float* out) {
  const int n = p.group_len;
  const bool asym = p.codec == Codec::kIntAsym;
  const __m512 vs = _mm512_set1_ps(load_scale_f16c(scales, g, p.fp32_scales));
  const __m512 vm = _mm512_set1_ps(asym ? load_scale_f16c(zeros, g, p.fp32_scales) : 0.0f);
  const __m512i offset = _mm512_set1_epi32(asym ? 0 : 1 << (p.bits - 1));
  for (int c0 = 0; c0 < n; c0 += kChunk) {
    const int m = n - c0 < kChunk ? n - c0 : kChunk;
    const __m512i all = load_unpack(codes + c0 / 8 * p.bits, m, p.bits);
    for (int j = 0; 16 * j < m; ++j) {
      const __m512 q = _mm512_cvtepi32_ps(_mm512_sub_epi32(extract_codes(all, j), offset));
      // Asym: t = q * s; x^ = t + m (two roundings). Sym: x^ = (code - 2^(b-1)) * s.
      __m512 v = _mm512_mul_ps(q, vs);
      if (asym) v = _mm512_add_ps(v, vm);
      _mm512_mask_storeu_ps(out + c0 + 16 * j, lanes(m - 16 * j), v);
    }
  }
}

// ---- fp8 ------------------------------------------------------------------------------

// math::fp8_encode of v / scale, sixteen lanes.
KVSAFE_TARGET void quantize_fp8_group(const float* x, const CodecParams& p, std::uint8_t* codes) {
  const math::Fp8Format f = math::fp8_format(p.codec == Codec::kFp8E4M3);
  const int drop = 23 - f.mant_bits;
  const __m512 scale = _mm512_set1_ps(p.fp8_scale);
  const __m512 max_finite = _mm512_set1_ps(f.max_finite);
  const __m512 inv_q = _mm512_set1_ps(f.subnormal_inv_q);
  const __m512i max_code = _mm512_set1_epi32(f.max_code);
  const __m512i min_normal = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(127 - f.bias + 1) << 23));
  const __m512i round_bias = _mm512_set1_epi32(static_cast<int>((1u << (drop - 1)) - 1u));
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i rebias = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(127 - f.bias) << f.mant_bits));
  const __m512i abs_mask = _mm512_set1_epi32(static_cast<int>(kSignMask));
  const __m512i sign_bit = _mm512_set1_epi32(0x80);
  const __m128i vdrop = _mm_cvtsi32_si128(drop);
  const int n = p.group_len;
  for (int i = 0; i < n; i += 16) {
    const __mmask16 k = lanes(n - i);
    const __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), scale);
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(bits, 24), sign_bit);
    const __m512i abs = _mm512_and_si512(bits, abs_mask);
    const __m512 a = _mm512_castsi512_ps(abs);
    // Normal: round the mantissa to mant_bits, half to even, rebias, cap at max_code.
    const __m512i odd = _mm512_and_si512(_mm512_srl_epi32(abs, vdrop), one);
    const __m512i rounded = _mm512_add_epi32(_mm512_add_epi32(abs, round_bias), odd);
    __m512i code = _mm512_min_epu32(_mm512_sub_epi32(_mm512_srl_epi32(rounded, vdrop), rebias), max_code);
    // Subnormal: round(a / quantum) (a * 2^k is exact).
    const __mmask16 sub = _mm512_cmplt_epu32_mask(abs, min_normal);
    code = _mm512_mask_mov_epi32(code, sub, _mm512_cvttps_epi32(round_half_even(_mm512_mul_ps(a, inv_q))));
    // Saturate: !(a < max_finite), infinities included.
    const __mmask16 sat = _mm512_cmp_ps_mask(a, max_finite, _CMP_NLT_UQ);
    code = _mm512_mask_mov_epi32(code, sat, max_code);
    _mm512_mask_cvtepi32_storeu_epi8(codes + i, k, _mm512_or_si512(code, sign));
  }
}

// math::fp8_decode(c) * scale, sixteen lanes.
KVSAFE_TARGET void dequantize_fp8_group(const std::uint8_t* codes, const CodecParams& p, float* out) {
  const math::Fp8Format f = math::fp8_format(p.codec == Codec::kFp8E4M3);
  const __m512 scale = _mm512_set1_ps(p.fp8_scale);
  // NOTE: the reference divides by subnormal_inv_q (a power of two); mant / 2^k and
  // mant * 2^-k are the same exact value.
  const __m512 quantum = _mm512_set1_ps(1.0f / f.subnormal_inv_q);
  const __m512i mant_mask = _mm512_set1_epi32((1 << f.mant_bits) - 1);
  const __m512i exp_bias = _mm512_set1_epi32(127 - f.bias);
  const std::uint32_t max_exp = (1u << (7 - f.mant_bits)) - 1u;
  const __m512i vmax_exp = _mm512_set1_epi32(static_cast<int>(max_exp));
  const __m128i vmant = _mm_cvtsi32_si128(f.mant_bits);
  const __m128i vmant_shift = _mm_cvtsi32_si128(23 - f.mant_bits);
  const bool e4m3 = f.mant_bits == 3;
  const int n = p.group_len;
  for (int i = 0; i < n; i += 16) {
    const __mmask16 k = lanes(n - i);
    const __m512i c = load_codes(codes + i, k);
    const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(c, _mm512_set1_epi32(0x80)), 24);
    const __m512i exp = _mm512_srl_epi32(_mm512_and_si512(c, _mm512_set1_epi32(0x7f)), vmant);
    const __m512i mant = _mm512_and_si512(c, mant_mask);
    __m512i v =
        _mm512_or_si512(_mm512_slli_epi32(_mm512_add_epi32(exp, exp_bias), 23), _mm512_sll_epi32(mant, vmant_shift));
    const __mmask16 sub = _mm512_cmpeq_epi32_mask(exp, _mm512_setzero_si512());
    v = _mm512_mask_mov_epi32(v, sub, _mm512_castps_si512(_mm512_mul_ps(_mm512_cvtepi32_ps(mant), quantum)));
    const __mmask16 top = _mm512_cmpeq_epi32_mask(exp, vmax_exp);
    if (e4m3) {
      const __mmask16 nan = top & _mm512_cmpeq_epi32_mask(mant, mant_mask);
      v = _mm512_mask_mov_epi32(v, nan, _mm512_set1_epi32(0x7fc00000));
    } else {
      const __mmask16 nan = top & _mm512_test_epi32_mask(mant, mant);
      v = _mm512_mask_mov_epi32(v, top, _mm512_set1_epi32(0x7f800000));
      v = _mm512_mask_mov_epi32(v, nan, _mm512_set1_epi32(0x7fc00000));
    }
    const __m512 value = _mm512_castsi512_ps(_mm512_or_si512(v, sign));
    _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(value, scale));
  }
}

}  // namespace

KVSAFE_TARGET void quantize_groups_avx512(const float* x, const CodecParams& p, std::int64_t begin, std::int64_t end,
                                          std::uint8_t* codes, void* scales, void* zeros) {
  const std::int64_t cb = codes_bytes(p);
  const bool fp8 = p.codec == Codec::kFp8E4M3 || p.codec == Codec::kFp8E5M2;
  // NOTE: groups go in blocks of kBlock, and each block first prefetches the groups
  // kAheadBlocks blocks ahead: the hardware prefetcher alone left the loads waiting on
  // memory for large caches. On [32, 32, 1024, 128] int4 per-token, 2 threads: 0.46-0.49 of
  // memcpy without the prefetches, 0.58-0.60 with them (4 or 8 blocks ahead: no better).
  // prefetch_floats is an always-inline function of this target, not a lambda: a lambda's
  // body is compiled for the default target, GCC did not inline it here, found it free of side
  // effects and deleted its calls, so no prefetch instruction was emitted at all.
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

KVSAFE_TARGET void dequantize_groups_avx512(const std::uint8_t* codes, const void* scales, const void* zeros,
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

void quantize_groups_avx512(const float*, const CodecParams&, std::int64_t, std::int64_t, std::uint8_t*, void*, void*) {
}
void dequantize_groups_avx512(const std::uint8_t*, const void*, const void*, const CodecParams&, std::int64_t,
                              std::int64_t, float*) {}

#endif

}  // namespace kvsafe::kernels::detail
