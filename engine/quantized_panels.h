#pragma once
// GGUF block-quantized weight matrices kept quantized in memory, laid out as the column panels
// of engine/packed_gemm.h: the packed kernels expand the weights to float32 as they multiply
// (in registers, or a slice of inputs at a time in L1), instead of the whole model being
// expanded at load.
//
// NOTE: why. A decode step streams every weight from memory. SmolLM2-135M-Instruct's Q4_1
// file expanded to float32 is 538 MB a step; kept as below it is about 110 MB, and the
// expansion costs a few instructions per 16 weights, far less than the memory stall it saves.
//
// Exactness: each weight expands to the float32 the reference dequantizer gives (ggml's
// dequantize_row_*, modelfile/gguf_dequantize.h), bit for bit: d * q (+ m) where d * q is exact
// in float32 (an 11-bit fp16 significand times an integer of at most 8 bits), so an FMA and a
// multiply-then-add round alike. A model's outputs do not change; load_quantized_panels()
// checks every weight against the reference at load.
//
// Layout: panel p holds output columns [32p, 32p + 32). It is in / 32 tiles, one per 32
// inputs, one after another; a tile is
//   float d[32]; float m[32] (Q4_1 only);                  the scale (and offset) per column
//   codes, in 8 groups of 4 inputs (k = 4g + j, j = 0..3); a group is 16 32-bit lanes (two
//   sets of 16 for 8-bit codes), and byte j of lane c holds input k's code of
//     4-bit: column c (low nibble) and column c + 16 (high nibble)
//     8-bit: column c in the first 16 lanes, column c + 16 in the second (signed)
//   so that expanding input k is shifts and masks of whole lanes, no byte shuffles.
// Columns past the matrix's last have d = m = 0 and codes 0: they expand to zeros (-0 for
// Q4_0), and their sums are never stored.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "modelfile/gguf_dequantize.h"

namespace kvsafe::engine {

// How a packed matrix stores its weights.
enum class PanelFormat : std::uint8_t {
  kFloat32,  // [in][32] floats per panel (engine/packed_gemm.h)
  kQ4_0,     // ggml q4_0: w = d * (q - 8), q in 0..15
  kQ4_1,     // ggml q4_1: w = d * q + m, q in 0..15
  kQ8_0,     // ggml q8_0: w = d * q, q in -128..127
};

inline constexpr std::int64_t kTileInputs = 32;

// The panel format that keeps `type` quantized, or nullopt when the engine expands it to
// float32 at load (every other ggml type).
std::optional<PanelFormat> panel_format_for(GgmlType type);

// The tile layout above, the one description of it: the packing and the scalar expansion
// (quantized_panels.cpp) and the kernels' vector expansion (packed_gemm.cpp) all read it here.
constexpr bool tile_has_offset(PanelFormat format) {
  return format == PanelFormat::kQ4_1;
}
constexpr bool tile_four_bit(PanelFormat format) {
  return format == PanelFormat::kQ4_0 || format == PanelFormat::kQ4_1;
}
// d (and m): one float per column.
constexpr std::int64_t tile_header_bytes(PanelFormat format) {
  return (tile_has_offset(format) ? 2 : 1) * kTileInputs * 4;
}
// The codes of one group of 4 inputs: 16 lanes of 4 bytes, twice for 8-bit codes.
constexpr std::int64_t tile_group_bytes(PanelFormat format) {
  return tile_four_bit(format) ? 64 : 128;
}
// Bytes of one tile (32 inputs x 32 columns; kFloat32: 32 x 32 floats).
constexpr std::int64_t tile_bytes(PanelFormat format) {
  return format == PanelFormat::kFloat32 ? kTileInputs * kTileInputs * 4
                                         : tile_header_bytes(format) + kTileInputs / 4 * tile_group_bytes(format);
}

// Bytes of a whole packed [in, out] matrix (in a multiple of 32 for the quantized formats;
// any in for kFloat32).
std::int64_t packed_bytes(PanelFormat format, std::int64_t in, std::int64_t out);

// Re-lays ggml blocks into tiles. `rows` are the matrix's `out` rows, each in / 32 blocks of
// `format`'s ggml type, in the order of the [out, in] matrix (weights_loader.h load_blocks); `panels` has
// packed_bytes(format, in, out) bytes. No checks: see load_quantized_panels().
void pack_quantized_panels(PanelFormat format, std::span<const std::byte> rows, std::int64_t in, std::int64_t out,
                           std::byte* panels);

// Column `column` of a quantized packed matrix expanded to float32 into dst[in]: the reference
// dequantizer's values (a tied embedding's row).
void unpack_quantized_column(PanelFormat format, const std::byte* panels, std::int64_t in, std::int64_t column,
                             float* dst);
// Asks for the cache lines unpack_quantized_column(format, panels, in, column) will read: a
// column's codes take one line in each group of four inputs, plus the scales' line, in every
// tile, so a row unpacked cold waits on ~160 misses one after another (SmolLM2's 18 tiles:
// ~10 us a token) unless they were requested earlier.
void prefetch_quantized_column(PanelFormat format, const std::byte* panels, std::int64_t in, std::int64_t column);

// The scalar reference of one tile's expansion: dst[k * 32 + c] = weight (input k, column c).
// The packed kernels run vector copies of it (packed_gemm.cpp); tests compare the two.
void expand_tile_reference(PanelFormat format, const std::byte* tile, float* dst);

// How a tile expands: expand_tile_reference, or the packed kernels' copy (packed_gemm.h
// expand_tile).
using TileExpander = void (*)(PanelFormat format, const std::byte* tile, float* dst);

// Packs `rows` (see pack_quantized_panels) and checks that every weight, expanded by `expand`,
// has exactly the bits of `expected` ([out, in] row-major floats, the reference dequantizer's
// output). Returns false, leaving `panels` unspecified (then the caller packs floats), on the
// first difference, when a scale or offset is inf or NaN, or when `rows` is not out x in / 32
// blocks of `format`.
bool load_quantized_panels(PanelFormat format, std::span<const std::byte> rows, std::span<const float> expected,
                           std::int64_t in, std::int64_t out, std::byte* panels,
                           TileExpander expand = &expand_tile_reference);

}  // namespace kvsafe::engine
