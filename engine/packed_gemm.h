#pragma once
// Weight matrices packed once at load into column panels, as float32 or as the quantized
// tiles of engine/quantized_panels.h, and their products with float32 activations: the
// engine's CPU matrix products (engine/transformer_blocks.h linear_t).
//
// NOTE: why not the BLAS. A decode step multiplies a few rows (the batch) by every weight
// matrix. OpenBLAS repacks the weight on every call (a third of a batch-32 SmolLM2 step
// went to that repacking) and only then computes, so streaming and compute never overlap. Packed once,
// a panel is read from memory once per call, and its rows are reused from cache by every
// activation row while the next panel streams in.
//
// Layout: panel p holds output columns [32p, 32p + 32) as [in][32] floats (zero-padded past
// the last column), or as in / 32 quantized tiles; panels follow one another. Every output element is one sum over the
// input dimension in order 0, 1, ..., in - 1 (an FMA chain on CPUs with FMA), whatever the
// number of rows, the threads, or which panels a thread holds: a row's result does not depend
// on the other rows of its batch, nor on the thread count.

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/cpu_kernels.h"
#include "engine/quantized_panels.h"

namespace kvsafe::engine {

inline constexpr std::int64_t kPanelColumns = 32;

// Floats a packed [in, out] matrix takes: ceil(out / 32) * in * 32.
std::int64_t packed_floats(std::int64_t in, std::int64_t out);

// Packs w, stored [out, in] row-major (the checkpoint's nn.Linear layout), into panels.
// `panels` has packed_floats(in, out) floats.
void pack_panels(const float* w, std::int64_t in, std::int64_t out, float* panels);

// Column `column` of a packed matrix (= row `column` of the [out, in] original) into dst[in].
void unpack_column(const float* panels, std::int64_t in, std::int64_t column, float* dst);

// One product of packed_matmul: out[m, n] = (residual[m, n] +) x[m, in] @ W^T (+ bias[n]),
// out and residual dense row-major.
// Quantized panels (engine/quantized_panels.h) are expanded to float32 as they are used (in
// registers for a few rows, else 128 inputs at a time into a buffer in L1): the same sums of
// the same floats as float panels.
struct PackedProduct {
  const void* panels = nullptr;  // packed [in, n]: floats, or tiles of `format`
  PanelFormat format = PanelFormat::kFloat32;
  std::int64_t n = 0;               // output columns
  const float* bias = nullptr;      // [n] or nullptr; added after the sum
  const float* residual = nullptr;  // [m, n] or nullptr; added last (a residual stream: h + o_proj(x))
  float* out = nullptr;             // [m, n]
};

// Work on the outputs of a pair of products (a SwiGLU's gate and up), run inside their
// parallel region as soon as both have finished columns [column, column + columns) of rows
// [row, row + rows): on the thread that computed them, while they are in its cache.
struct PairEpilogue {
  void (*run)(void* context, const PackedProduct& first, const PackedProduct& second, std::int64_t row,
              std::int64_t rows, std::int64_t column, std::int64_t columns) = nullptr;
  void* context = nullptr;
};

// The products of one input x[m, in] (dense row-major) with several packed weights (q, k and
// v; gate and up), their panels split over ATen's pool in one parallel region. Inside a
// parallel region everything runs on the calling thread. With a pair epilogue there are two
// products with the same n: panel j of the first and of the second run one after the other on
// one thread, then the epilogue on their columns.
void packed_matmul(const float* x, std::int64_t m, std::int64_t in, std::span<const PackedProduct> products,
                   const PairEpilogue* pair = nullptr);

// Tile `tile` of format `format` expanded by the chosen copy's vector code into dst[32 * 32]
// ([input][column]); tests compare it with expand_tile_reference().
void expand_tile(PanelFormat format, const std::byte* tile, float* dst);

// The copy of the kernels packed_matmul runs now (common/cpu_kernels.h chooses it).
CpuKernels packed_matmul_kernels();

}  // namespace kvsafe::engine
