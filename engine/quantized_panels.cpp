// engine/quantized_panels.h: ggml blocks re-laid into panel tiles, and their scalar expansion.
// Compiled with -ffp-contract=off (forward.cmake), like gguf_dequantize.cpp: the reference
// expansion multiplies, then adds, as ggml does.

#include "engine/quantized_panels.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"

namespace kvsafe::engine {
namespace {

// One ggml block (32 weights of one column): its scale, offset and codes 0..31 in input order.
struct Block {
  float d = 0.0f, m = 0.0f;
  std::int32_t q[kTileInputs] = {};
};

std::int64_t ggml_block_bytes(PanelFormat format) {
  switch (format) {
    case PanelFormat::kQ4_0:
      return 18;  // f16 d; u8 qs[16]
    case PanelFormat::kQ4_1:
      return 20;  // f16 d; f16 m; u8 qs[16]
    case PanelFormat::kQ8_0:
      return 34;  // f16 d; i8 qs[32]
    case PanelFormat::kFloat32:
      break;
  }
  KVSAFE_ASSERT(false, "ggml_block_bytes: not a block format");
  return 0;
}

float load_f16(const std::byte* p) {
  std::uint8_t b[2];
  std::memcpy(b, p, 2);
  return fp16_to_float(static_cast<std::uint16_t>(b[0] | (b[1] << 8)));
}

// ggml's block: codes as stored (4-bit ones unsigned 0..15; element j and j + 16 share byte j).
Block read_ggml_block(PanelFormat format, const std::byte* b) {
  Block out;
  out.d = load_f16(b);
  if (format == PanelFormat::kQ8_0) {
    for (int j = 0; j < kTileInputs; ++j) out.q[j] = static_cast<std::int8_t>(b[2 + j]);
    return out;
  }
  const std::byte* qs = b + 2;
  if (format == PanelFormat::kQ4_1) {
    out.m = load_f16(b + 2);
    qs = b + 4;
  }
  for (int j = 0; j < kTileInputs / 2; ++j) {
    const auto byte = static_cast<std::uint8_t>(qs[j]);
    out.q[j] = byte & 0x0F;
    out.q[j + kTileInputs / 2] = byte >> 4;
  }
  return out;
}

// Where (input k, column c)'s code is in the tile's codes (see quantized_panels.h).
std::int64_t code_offset(PanelFormat format, std::int64_t k, std::int64_t c) {
  const std::int64_t group = k / 4, j = k % 4, lane = c % 16;
  const std::int64_t half = tile_four_bit(format) ? 0 : c / 16;  // 8-bit: columns 16-31 after 0-15
  return group * tile_group_bytes(format) + half * 64 + lane * 4 + j;
}

// The weight of code q: the arithmetic of ggml's dequantize_row_* for the format.
float expand(PanelFormat format, float d, float m, std::int32_t q) {
  switch (format) {
    case PanelFormat::kQ4_0:
      return d * static_cast<float>(q - 8);
    case PanelFormat::kQ4_1:
      return d * static_cast<float>(q) + m;
    case PanelFormat::kQ8_0:
      return static_cast<float>(q) * d;
    case PanelFormat::kFloat32:
      break;
  }
  return 0.0f;
}

// Code q of (input k, column c) in a tile.
std::int32_t tile_code(PanelFormat format, const std::byte* tile, std::int64_t k, std::int64_t c) {
  const std::byte code = tile[tile_header_bytes(format) + code_offset(format, k, c)];
  if (!tile_four_bit(format)) return static_cast<std::int8_t>(code);
  const auto byte = static_cast<std::uint8_t>(code);
  return c < kTileInputs / 2 ? (byte & 0x0F) : (byte >> 4);
}

float tile_d(const std::byte* tile, std::int64_t c) {
  float d;
  std::memcpy(&d, tile + c * static_cast<std::int64_t>(sizeof(float)), sizeof(float));
  return d;
}
float tile_m(PanelFormat format, const std::byte* tile, std::int64_t c) {
  if (!tile_has_offset(format)) return 0.0f;
  float m;
  std::memcpy(&m, tile + (kTileInputs + c) * static_cast<std::int64_t>(sizeof(float)), sizeof(float));
  return m;
}

}  // namespace

std::optional<PanelFormat> panel_format_for(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0:
      return PanelFormat::kQ4_0;
    case GgmlType::kQ4_1:
      return PanelFormat::kQ4_1;
    case GgmlType::kQ8_0:
      return PanelFormat::kQ8_0;
    default:
      return std::nullopt;
  }
}

std::int64_t packed_bytes(PanelFormat format, std::int64_t in, std::int64_t out) {
  constexpr std::int64_t kColumns = kTileInputs;  // a panel's columns
  const std::int64_t panels = (out + kColumns - 1) / kColumns;
  if (format == PanelFormat::kFloat32) return panels * in * kColumns * static_cast<std::int64_t>(sizeof(float));
  KVSAFE_ASSERT(in % kTileInputs == 0, "packed_bytes: ", in, " inputs are not whole blocks of 32");
  return panels * (in / kTileInputs) * tile_bytes(format);
}

void pack_quantized_panels(PanelFormat format, std::span<const std::byte> rows, std::int64_t in, std::int64_t out,
                           std::byte* panels) {
  KVSAFE_ASSERT(format != PanelFormat::kFloat32 && in % kTileInputs == 0);
  const std::int64_t blocks_per_row = in / kTileInputs;
  const std::int64_t block_bytes = ggml_block_bytes(format);
  KVSAFE_ASSERT(static_cast<std::int64_t>(rows.size()) == out * blocks_per_row * block_bytes,
                "pack_quantized_panels: ", rows.size(), " bytes are not ", out, " rows of ", blocks_per_row, " blocks");
  const std::int64_t tile = tile_bytes(format);
  const std::int64_t header = tile_header_bytes(format);
  const std::int64_t panel_count = (out + kTileInputs - 1) / kTileInputs;
  std::memset(panels, 0, static_cast<std::size_t>(packed_bytes(format, in, out)));
  for (std::int64_t p = 0; p < panel_count; ++p) {
    for (std::int64_t b = 0; b < blocks_per_row; ++b) {
      std::byte* t = panels + (p * blocks_per_row + b) * tile;
      for (std::int64_t c = 0; c < kTileInputs && p * kTileInputs + c < out; ++c) {
        const std::int64_t column = p * kTileInputs + c;
        const Block block = read_ggml_block(format, rows.data() + (column * blocks_per_row + b) * block_bytes);
        std::memcpy(t + c * static_cast<std::int64_t>(sizeof(float)), &block.d, sizeof(float));
        if (tile_has_offset(format)) {
          std::memcpy(t + (kTileInputs + c) * static_cast<std::int64_t>(sizeof(float)), &block.m, sizeof(float));
        }
        for (std::int64_t k = 0; k < kTileInputs; ++k) {
          std::byte& code = t[header + code_offset(format, k, c)];
          if (!tile_four_bit(format)) {
            code = static_cast<std::byte>(static_cast<std::uint8_t>(block.q[k]));
          } else if (c < kTileInputs / 2) {
            code |= static_cast<std::byte>(block.q[k]);
          } else {
            code |= static_cast<std::byte>(block.q[k] << 4);
          }
        }
      }
    }
  }
}

void expand_tile_reference(PanelFormat format, const std::byte* tile, float* dst) {
  for (std::int64_t c = 0; c < kTileInputs; ++c) {
    const float d = tile_d(tile, c), m = tile_m(format, tile, c);
    for (std::int64_t k = 0; k < kTileInputs; ++k) {
      dst[k * kTileInputs + c] = expand(format, d, m, tile_code(format, tile, k, c));
    }
  }
}

void unpack_quantized_column(PanelFormat format, const std::byte* panels, std::int64_t in, std::int64_t column,
                             float* dst) {
  const std::int64_t blocks_per_row = in / kTileInputs;
  const std::int64_t c = column % kTileInputs;
  const std::byte* panel = panels + column / kTileInputs * blocks_per_row * tile_bytes(format);
  for (std::int64_t b = 0; b < blocks_per_row; ++b) {
    const std::byte* tile = panel + b * tile_bytes(format);
    const float d = tile_d(tile, c), m = tile_m(format, tile, c);
    for (std::int64_t k = 0; k < kTileInputs; ++k)
      dst[b * kTileInputs + k] = expand(format, d, m, tile_code(format, tile, k, c));
  }
}

void prefetch_quantized_column(PanelFormat format, const std::byte* panels, std::int64_t in, std::int64_t column) {
  const std::int64_t blocks_per_row = in / kTileInputs;
  const std::int64_t c = column % kTileInputs;
  const std::byte* panel = panels + column / kTileInputs * blocks_per_row * tile_bytes(format);
  for (std::int64_t b = 0; b < blocks_per_row; ++b) {
    const std::byte* tile = panel + b * tile_bytes(format);
    __builtin_prefetch(tile + c * static_cast<std::int64_t>(sizeof(float)));
    if (tile_has_offset(format))
      __builtin_prefetch(tile + (kTileInputs + c) * static_cast<std::int64_t>(sizeof(float)));
    for (std::int64_t k = 0; k < kTileInputs; k += 4) {
      __builtin_prefetch(tile + tile_header_bytes(format) + code_offset(format, k, c));
    }
  }
}

bool load_quantized_panels(PanelFormat format, std::span<const std::byte> rows, std::span<const float> expected,
                           std::int64_t in, std::int64_t out, std::byte* panels, TileExpander expand) {
  KVSAFE_ASSERT(static_cast<std::int64_t>(expected.size()) == in * out);
  if (format == PanelFormat::kFloat32 || in % kTileInputs != 0 ||
      static_cast<std::int64_t>(rows.size()) != out * (in / kTileInputs) * ggml_block_bytes(format)) {
    return false;
  }
  // NOTE: inf or NaN scales are refused although the scalar expansion would match them: the
  // kernels' FMA may carry another NaN's payload than the reference's multiply-then-add.
  const std::int64_t block_bytes = ggml_block_bytes(format);
  for (std::int64_t b = 0; b * block_bytes < static_cast<std::int64_t>(rows.size()); ++b) {
    const std::byte* block = rows.data() + b * block_bytes;
    if (!std::isfinite(load_f16(block))) return false;
    if (tile_has_offset(format) && !std::isfinite(load_f16(block + 2))) return false;
  }
  pack_quantized_panels(format, rows, in, out, panels);
  // Every tile expanded as `expand` does it, against the expected floats' bits (-0 and NaN
  // payloads included).
  std::vector<float> tile(static_cast<std::size_t>(kTileInputs * kTileInputs));
  const std::int64_t tiles_per_panel = in / kTileInputs;
  const std::int64_t tile_size = tile_bytes(format);
  for (std::int64_t p = 0; p * kTileInputs < out; ++p) {
    const std::int64_t columns = std::min(kTileInputs, out - p * kTileInputs);
    for (std::int64_t t = 0; t < tiles_per_panel; ++t) {
      expand(format, panels + (p * tiles_per_panel + t) * tile_size, tile.data());
      for (std::int64_t c = 0; c < columns; ++c) {
        const float* want = expected.data() + (p * kTileInputs + c) * in + t * kTileInputs;
        bool same = true;
        for (std::int64_t k = 0; k < kTileInputs; ++k) {
          same &= std::bit_cast<std::uint32_t>(tile[static_cast<std::size_t>(k * kTileInputs + c)]) ==
                  std::bit_cast<std::uint32_t>(want[k]);
        }
        if (!same) return false;
      }
    }
  }
  return true;
}

}  // namespace kvsafe::engine
