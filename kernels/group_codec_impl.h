#pragma once
// Per-group quantize+pack / unpack+dequantize, shared by the CPU reference and the CUDA
// kernels (one group per call; formulas in group_codec.h). Private to kernels/.

#include <math.h>

#include <cstdint>

#include "kernels/group_codec.h"
#include "kernels/quant_math.h"

namespace kvsafe::kernels::detail {

constexpr float kHalfMax = 65504.0f;

// Code width: p.bits for the integer codecs, fixed by the format otherwise.
KVSAFE_HD int code_bits(const CodecParams& p) {
  switch (p.codec) {
    case Codec::kIntSym:
    case Codec::kIntAsym:
      return p.bits;
    case Codec::kQ4_0:
    case Codec::kQ4_1:
      return 4;
    case Codec::kQ5_0:
    case Codec::kQ5_1:
      return 5;
    default:
      return 8;
  }
}

KVSAFE_HD float store_scale(void* base, std::int64_t g, float v, bool fp32) {
  if (fp32) {
    static_cast<float*>(base)[g] = v;
    return v;
  }
  const float sat = math::clampf(v, -kHalfMax, kHalfMax);
  const std::uint16_t h = math::float_to_half(sat);
  static_cast<std::uint16_t*>(base)[g] = h;
  return math::half_to_float(h);
}

KVSAFE_HD float load_scale(const void* base, std::int64_t g, bool fp32) {
  if (fp32) return static_cast<const float*>(base)[g];
  return math::half_to_float(static_cast<const std::uint16_t*>(base)[g]);
}

// Writes `code` (bits wide) at element i of a group's byte run (zeroed by the caller).
KVSAFE_HD void put_code(std::uint8_t* out, int i, int bits, std::uint32_t code) {
  const int bit = i * bits;
  const int byte = bit >> 3, shift = bit & 7;
  const std::uint32_t v = code << shift;
  out[byte] = static_cast<std::uint8_t>(out[byte] | (v & 0xffu));
  if (shift + bits > 8) out[byte + 1] = static_cast<std::uint8_t>(out[byte + 1] | (v >> 8));
}

KVSAFE_HD std::uint32_t get_code(const std::uint8_t* in, int i, int bits) {
  const int bit = i * bits;
  const int byte = bit >> 3, shift = bit & 7;
  std::uint32_t v = in[byte];
  if (shift + bits > 8) v |= static_cast<std::uint32_t>(in[byte + 1]) << 8;
  return (v >> shift) & ((1u << bits) - 1u);
}

// ggml's signed maximum: the first element of largest magnitude (quantize_row_q4_0_ref).
KVSAFE_HD float signed_max(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float a = x[j] < 0 ? -x[j] : x[j];
    if (amax < a) {
      amax = a;
      max = x[j];
    }
  }
  return max;
}

KVSAFE_HD void quantize_group(const float* x, const CodecParams& p, std::int64_t g, std::uint8_t* codes, void* scales,
                              void* zeros, int cbytes) {
  const int n = p.group_len;
  for (int i = 0; i < cbytes; ++i) codes[i] = 0;
  switch (p.codec) {
    case Codec::kIntAsym: {
      float mn = x[0], mx = x[0];
      for (int i = 1; i < n; ++i) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
      }
      const float qmax = static_cast<float>((1 << p.bits) - 1);
      const float s = store_scale(scales, g, (mx - mn) / qmax, p.fp32_scales);
      const float m = store_scale(zeros, g, mn, p.fp32_scales);
      if (s > 0.0f) {
        for (int i = 0; i < n; ++i) {
          const float q = math::round_half_even(math::clampf((x[i] - m) / s, 0.0f, qmax));
          put_code(codes, i, p.bits, static_cast<std::uint32_t>(q));
        }
      }
      return;
    }
    case Codec::kIntSym: {
      float amax = 0.0f;
      for (int i = 0; i < n; ++i) {
        const float a = x[i] < 0 ? -x[i] : x[i];
        amax = a > amax ? a : amax;
      }
      const int half = 1 << (p.bits - 1);
      const float qmax = static_cast<float>(half - 1), qmin = -static_cast<float>(half);
      const float s = store_scale(scales, g, amax / qmax, p.fp32_scales);
      for (int i = 0; i < n; ++i) {
        const float q = s > 0.0f ? math::round_half_even(math::clampf(x[i] / s, qmin, qmax)) : 0.0f;
        put_code(codes, i, p.bits, static_cast<std::uint32_t>(static_cast<int>(q) + half));
      }
      return;
    }
    case Codec::kFp8E4M3:
    case Codec::kFp8E5M2: {
      const math::Fp8Format f = math::fp8_format(p.codec == Codec::kFp8E4M3);
      for (int i = 0; i < n; ++i) codes[i] = math::fp8_encode(x[i] / p.fp8_scale, f);
      return;
    }
    case Codec::kQ8_0: {
      float amax = 0.0f;
      for (int i = 0; i < n; ++i) {
        const float a = x[i] < 0 ? -x[i] : x[i];
        amax = a > amax ? a : amax;
      }
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      store_scale(scales, g, d, false);
      for (int i = 0; i < n; ++i) {
        const float q = roundf(x[i] * id);  // ggml: roundf, half away from zero
        codes[i] = static_cast<std::uint8_t>(static_cast<int>(q) + 128);
      }
      return;
    }
    case Codec::kQ4_0:
    case Codec::kQ5_0: {
      const bool five = p.codec == Codec::kQ5_0;
      const float d = signed_max(x, n) / (five ? -16.0f : -8.0f);
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      store_scale(scales, g, d, false);
      const float offset = five ? 16.5f : 8.5f;
      const int top = five ? 31 : 15;
      for (int i = 0; i < n; ++i) {
        const int q = static_cast<int>(static_cast<std::int8_t>(x[i] * id + offset));
        put_code(codes, i, code_bits(p), static_cast<std::uint32_t>(q < top ? q : top));
      }
      return;
    }
    case Codec::kQ4_1:
    case Codec::kQ5_1: {
      float mn = x[0], mx = x[0];
      for (int i = 1; i < n; ++i) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
      }
      const bool five = p.codec == Codec::kQ5_1;
      const float d = (mx - mn) / (five ? 31.0f : 15.0f);
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      store_scale(scales, g, d, false);
      store_scale(zeros, g, mn, false);
      const int top = five ? 31 : 15;
      for (int i = 0; i < n; ++i) {
        // NOTE: ggml quantizes with the float32 min and d, and dequantizes with their fp16 copies.
        const float v = (x[i] - mn) * id + 0.5f;
        const int q =
            five ? static_cast<int>(static_cast<std::uint8_t>(v)) : static_cast<int>(static_cast<std::int8_t>(v));
        put_code(codes, i, code_bits(p), static_cast<std::uint32_t>(q < top ? q : top));
      }
      return;
    }
  }
}

KVSAFE_HD void dequantize_group(const std::uint8_t* codes, const void* scales, const void* zeros, const CodecParams& p,
                                std::int64_t g, float* out) {
  const int n = p.group_len;
  switch (p.codec) {
    case Codec::kIntAsym: {
      const float s = load_scale(scales, g, p.fp32_scales), m = load_scale(zeros, g, p.fp32_scales);
      for (int i = 0; i < n; ++i) {
        const float q = static_cast<float>(get_code(codes, i, p.bits));
        const float t = q * s;
        out[i] = t + m;
      }
      return;
    }
    case Codec::kIntSym: {
      const float s = load_scale(scales, g, p.fp32_scales);
      const int half = 1 << (p.bits - 1);
      for (int i = 0; i < n; ++i) {
        out[i] = static_cast<float>(static_cast<int>(get_code(codes, i, p.bits)) - half) * s;
      }
      return;
    }
    case Codec::kFp8E4M3:
    case Codec::kFp8E5M2: {
      const math::Fp8Format f = math::fp8_format(p.codec == Codec::kFp8E4M3);
      for (int i = 0; i < n; ++i) out[i] = math::fp8_decode(codes[i], f) * p.fp8_scale;
      return;
    }
    case Codec::kQ8_0: {
      const float d = load_scale(scales, g, false);
      for (int i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<int>(codes[i]) - 128) * d;
      return;
    }
    case Codec::kQ4_0:
    case Codec::kQ5_0: {
      const float d = load_scale(scales, g, false);
      const int mid = p.codec == Codec::kQ5_0 ? 16 : 8;
      for (int i = 0; i < n; ++i) {
        out[i] = static_cast<float>(static_cast<int>(get_code(codes, i, code_bits(p))) - mid) * d;
      }
      return;
    }
    case Codec::kQ4_1:
    case Codec::kQ5_1: {
      const float d = load_scale(scales, g, false), m = load_scale(zeros, g, false);
      for (int i = 0; i < n; ++i) {
        const float t = static_cast<float>(get_code(codes, i, code_bits(p))) * d;
        out[i] = t + m;
      }
      return;
    }
  }
}

}  // namespace kvsafe::kernels::detail
