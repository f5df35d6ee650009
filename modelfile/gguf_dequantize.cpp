// Reference dequantization of ggml block formats. Layouts and formulas: ggml-common.h
// (block_q4_0 ... block_q6_K) and dequantize_row_* in ggml-quants.c. The arithmetic is
// written in the same order as ggml and the `gguf` Python package so that results are
// bit-identical; weights.cmake compiles this file with -ffp-contract=off so no FMA
// changes the rounding.

#include "modelfile/gguf_dequantize.h"

#include <array>
#include <bit>
#include <cstring>
#include <string>

#include "common/error.h"

namespace kvsafe::engine {
namespace {

constexpr int kQK = 32;    // elements per block of the legacy formats
constexpr int kQKK = 256;  // elements per K-quant super-block

const std::uint8_t* as_u8(const std::byte* p) {
  return reinterpret_cast<const std::uint8_t*>(p);
}

std::uint16_t load_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t load_u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
float load_f16(const std::uint8_t* p) {
  return fp16_to_float(load_u16(p));
}

void dequant_q4_0(const std::uint8_t* b, float* y) {  // {f16 d; u8 qs[16]}
  const float d = load_f16(b);
  const std::uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = (qs[j] & 0x0F) - 8;
    const int x1 = (qs[j] >> 4) - 8;
    y[j] = d * static_cast<float>(x0);
    y[j + kQK / 2] = d * static_cast<float>(x1);
  }
}

void dequant_q4_1(const std::uint8_t* b, float* y) {  // {f16 d; f16 m; u8 qs[16]}
  const float d = load_f16(b);
  const float m = load_f16(b + 2);
  const std::uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    y[j + kQK / 2] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

void dequant_q5_0(const std::uint8_t* b, float* y) {  // {f16 d; u8 qh[4]; u8 qs[16]}
  const float d = load_f16(b);
  const std::uint32_t qh = load_u32(b + 2);
  const std::uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const int h0 = static_cast<int>((qh >> j) & 1U) << 4;
    const int h1 = static_cast<int>((qh >> (j + 16)) & 1U) << 4;
    y[j] = d * static_cast<float>(((qs[j] & 0x0F) | h0) - 16);
    y[j + kQK / 2] = d * static_cast<float>(((qs[j] >> 4) | h1) - 16);
  }
}

void dequant_q5_1(const std::uint8_t* b, float* y) {  // {f16 d; f16 m; u8 qh[4]; u8 qs[16]}
  const float d = load_f16(b);
  const float m = load_f16(b + 2);
  const std::uint32_t qh = load_u32(b + 4);
  const std::uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const int h0 = static_cast<int>((qh >> j) & 1U) << 4;
    const int h1 = static_cast<int>((qh >> (j + 16)) & 1U) << 4;
    y[j] = d * static_cast<float>((qs[j] & 0x0F) | h0) + m;
    y[j + kQK / 2] = d * static_cast<float>((qs[j] >> 4) | h1) + m;
  }
}

void dequant_q8_0(const std::uint8_t* b, float* y) {  // {f16 d; i8 qs[32]}
  const float d = load_f16(b);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(b[2 + j])) * d;
}

// The 6-bit scale and min of sub-block j (0..7) packed in 12 bytes (ggml get_scale_min_k4).
void scale_min_k4(int j, const std::uint8_t* q, std::uint8_t& sc, std::uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<std::uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void dequant_q4_k(const std::uint8_t* b, float* y) {  // {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  const std::uint8_t* scales = b + 4;
  const std::uint8_t* q = b + 16;
  for (int j = 0, is = 0; j < kQKK; j += 64, is += 2, q += 32) {
    std::uint8_t sc = 0, m = 0;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

// {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}
void dequant_q5_k(const std::uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  const std::uint8_t* scales = b + 4;
  const std::uint8_t* qh = b + 16;
  const std::uint8_t* ql = b + 48;
  unsigned u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < kQKK; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    std::uint8_t sc = 0, m = 0;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
    }
  }
}

void dequant_q6_k(const std::uint8_t* b, float* y) {  // {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}
  const std::uint8_t* ql = b;
  const std::uint8_t* qh = b + 128;
  const std::uint8_t* sc_bytes = b + 192;
  const float d = load_f16(b + 208);
  for (int n = 0; n < kQKK; n += 128, y += 128, ql += 64, qh += 32, sc_bytes += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      auto scale = [&](int k) { return d * static_cast<float>(static_cast<std::int8_t>(sc_bytes[is + k])); };
      y[l + 0] = scale(0) * static_cast<float>(q1);
      y[l + 32] = scale(2) * static_cast<float>(q2);
      y[l + 64] = scale(4) * static_cast<float>(q3);
      y[l + 96] = scale(6) * static_cast<float>(q4);
    }
  }
}

constexpr std::size_t kTypeTableSize = 42;

// Geometry of every ggml type (ggml.c type_traits); empty name = undefined id.
constexpr std::array<GgmlTypeTraits, kTypeTableSize> kTraits = [] {
  std::array<GgmlTypeTraits, kTypeTableSize> t{};
  auto set = [&](GgmlType type, std::string_view name, std::uint32_t block, std::uint32_t size, bool supported) {
    t[static_cast<std::size_t>(type)] =
        GgmlTypeTraits{.name = name, .block_size = block, .type_size = size, .dequantizable = supported};
  };
  set(GgmlType::kF32, "f32", 1, 4, true);
  set(GgmlType::kF16, "f16", 1, 2, true);
  set(GgmlType::kQ4_0, "q4_0", 32, 18, true);
  set(GgmlType::kQ4_1, "q4_1", 32, 20, true);
  set(GgmlType::kQ5_0, "q5_0", 32, 22, true);
  set(GgmlType::kQ5_1, "q5_1", 32, 24, true);
  set(GgmlType::kQ8_0, "q8_0", 32, 34, true);
  set(GgmlType::kQ8_1, "q8_1", 32, 36, false);
  set(GgmlType::kQ2_K, "q2_K", 256, 84, false);
  set(GgmlType::kQ3_K, "q3_K", 256, 110, false);
  set(GgmlType::kQ4_K, "q4_K", 256, 144, true);
  set(GgmlType::kQ5_K, "q5_K", 256, 176, true);
  set(GgmlType::kQ6_K, "q6_K", 256, 210, true);
  set(GgmlType::kQ8_K, "q8_K", 256, 292, false);
  set(GgmlType::kIQ2_XXS, "iq2_xxs", 256, 66, false);
  set(GgmlType::kIQ2_XS, "iq2_xs", 256, 74, false);
  set(GgmlType::kIQ3_XXS, "iq3_xxs", 256, 98, false);
  set(GgmlType::kIQ1_S, "iq1_s", 256, 50, false);
  set(GgmlType::kIQ4_NL, "iq4_nl", 32, 18, false);
  set(GgmlType::kIQ3_S, "iq3_s", 256, 110, false);
  set(GgmlType::kIQ2_S, "iq2_s", 256, 82, false);
  set(GgmlType::kIQ4_XS, "iq4_xs", 256, 136, false);
  set(GgmlType::kI8, "i8", 1, 1, false);
  set(GgmlType::kI16, "i16", 1, 2, false);
  set(GgmlType::kI32, "i32", 1, 4, false);
  set(GgmlType::kI64, "i64", 1, 8, false);
  set(GgmlType::kF64, "f64", 1, 8, false);
  set(GgmlType::kIQ1_M, "iq1_m", 256, 56, false);
  set(GgmlType::kBF16, "bf16", 1, 2, true);
  set(GgmlType::kTQ1_0, "tq1_0", 256, 54, false);
  set(GgmlType::kTQ2_0, "tq2_0", 256, 66, false);
  t[39] = GgmlTypeTraits{.name = "mxfp4", .block_size = 32, .type_size = 17, .dequantizable = false};
  return t;
}();

}  // namespace

float fp16_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000U) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1FU;
  std::uint32_t mantissa = h & 0x3FFU;
  std::uint32_t bits = 0;
  if (exponent == 0x1F) {  // inf / NaN (payload kept, as numpy and ggml do)
    bits = sign | 0x7F800000U | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal half: normalize
    exponent = 113;
    while ((mantissa & 0x400U) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3FFU) << 13);
  }
  return std::bit_cast<float>(bits);
}

float bf16_to_float(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

std::optional<GgmlTypeTraits> ggml_type_traits(std::uint32_t type_id) {
  if (type_id >= kTraits.size() || kTraits[type_id].name.empty()) return std::nullopt;
  return kTraits[type_id];
}

std::string to_string(GgmlType type) {
  const auto traits = ggml_type_traits(static_cast<std::uint32_t>(type));
  if (!traits) return "type " + std::to_string(static_cast<std::uint32_t>(type));
  return std::string(traits->name);
}

void dequantize_to_float(GgmlType type, std::span<const std::byte> src, std::span<float> dst) {
  const auto traits = ggml_type_traits(static_cast<std::uint32_t>(type));
  KVSAFE_CHECK(traits && traits->dequantizable, "cannot dequantize ggml type ", to_string(type),
               " (supported: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q4_K q5_K q6_K)");
  KVSAFE_CHECK(dst.size() % traits->block_size == 0, to_string(type), ": ", dst.size(),
               " elements is not a multiple of the block size ", traits->block_size);
  const std::size_t n_blocks = dst.size() / traits->block_size;
  KVSAFE_CHECK(src.size() == n_blocks * traits->type_size, to_string(type), ": ", dst.size(), " elements need ",
               n_blocks * traits->type_size, " bytes, got ", src.size());
  const std::uint8_t* in = as_u8(src.data());
  float* out = dst.data();
  switch (type) {
    case GgmlType::kF32:
      if (!dst.empty()) std::memcpy(out, in, src.size());
      return;
    case GgmlType::kF16:
      for (std::size_t i = 0; i < dst.size(); ++i) out[i] = load_f16(in + 2 * i);
      return;
    case GgmlType::kBF16:
      for (std::size_t i = 0; i < dst.size(); ++i) out[i] = bf16_to_float(load_u16(in + 2 * i));
      return;
    default:
      break;
  }
  // NOTE: one loop per type (not a function pointer per block) lets the compiler inline and
  // vectorize the block bodies.
  const std::size_t type_size = traits->type_size;
  const std::size_t block_size = traits->block_size;
  auto run = [&](auto fn) {
    for (std::size_t i = 0; i < n_blocks; ++i) fn(in + i * type_size, out + i * block_size);
  };
  switch (type) {
    case GgmlType::kQ4_0:
      run(dequant_q4_0);
      break;
    case GgmlType::kQ4_1:
      run(dequant_q4_1);
      break;
    case GgmlType::kQ5_0:
      run(dequant_q5_0);
      break;
    case GgmlType::kQ5_1:
      run(dequant_q5_1);
      break;
    case GgmlType::kQ8_0:
      run(dequant_q8_0);
      break;
    case GgmlType::kQ4_K:
      run(dequant_q4_k);
      break;
    case GgmlType::kQ5_K:
      run(dequant_q5_k);
      break;
    case GgmlType::kQ6_K:
      run(dequant_q6_k);
      break;
    default:
      KVSAFE_ASSERT(false, "dequantizable type without a block function");
  }
}

}  // namespace kvsafe::engine
