// engine/packed_gemm.h: packed weight panels and their products with activation rows.

#include "engine/packed_gemm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "common/cpu_kernels.h"
#include "common/error.h"
#include "engine/lanes16.h"

namespace kvsafe::engine {
namespace {

using lanes::load;
using lanes::store;

// One panel times one block of `kRows` activation rows, read in place: per input k, one
// broadcast from each row. `panel` is [in][32].
// NOTE: not packing the rows first ([in][rows], one contiguous broadcast stream): that ran
// serially before each parallel region and was slower even without that cost
// (engine/README.md, "Measured").
struct BlockArgs {
  const float* x;          // the block's first row, at the first input this call covers
  std::int64_t ldx;        // x's row stride
  const float* panel;      // float32 [in][32] from that input, or
  const std::byte* tiles;  // the quantized tiles from that input (the fused kernels)
  std::int64_t in;         // inputs this call covers
  float* out;              // the block's first row, at the panel's first column
  std::int64_t ldo;        // out's row stride
  std::int64_t columns;    // valid columns of this panel (32 except in the last)
  const float* bias;       // at the panel's first column, or nullptr
  const float* residual;   // the block's first row at the panel's first column (stride ldo), or nullptr
  // A product split over several calls along the inputs (quantized panels, expanded a slice
  // at a time): sums to continue from and to leave for the next call, [rows][32] each, or
  // nullptr (start from 0; finish into out). Stored and reloaded exactly: the same sums.
  const float* partial_in;
  float* partial_out;
  const char* prefetch;         // lines of the next panel to bring into L2 meanwhile
  std::int64_t prefetch_lines;  // how many (64-byte lines)
};

// NOTE: the next panel is requested while this one computes, or the first row block of
// each panel waits on memory and streaming never overlaps compute; and spread evenly over
// the loop, because bursts fill the line-fill buffers and stall the loads that compute needs
// (engine/README.md, "Measured"). Call once per input: a.prefetch_lines lines spread evenly
// over a.in calls.
struct Prefetcher {
  std::int64_t owed = 0, line = 0;  // prefetches due, times in; lines issued
  [[gnu::always_inline]] inline void step(const BlockArgs& a) {
    for (owed += a.prefetch_lines; owed >= a.in; owed -= a.in, ++line) {
      __builtin_prefetch(a.prefetch + line * 64, 0, /*locality: L2=*/2);
    }
  }
};

// The sums of a row block: columns 0-15 (lo) and 16-31 (hi) of each row, in lane set L's
// native vectors.
template <typename L, int kRows>
struct Sums {
  typename L::F lo[kRows], hi[kRows];
};

template <typename L, int kRows>
[[gnu::always_inline]] inline void start_sums(const BlockArgs& a, Sums<L, kRows>& s) {
  using F = typename L::F;
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) {
    s.lo[r] = a.partial_in != nullptr ? load<F>(a.partial_in + r * kPanelColumns) : F::zero();
    s.hi[r] = a.partial_in != nullptr ? load<F>(a.partial_in + r * kPanelColumns + 16) : F::zero();
  }
}

template <typename L, int kRows>
[[gnu::always_inline]] inline void finish_sums(const BlockArgs& a, const Sums<L, kRows>& s) {
  using F = typename L::F;
  if (a.partial_out != nullptr) {
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
      store(a.partial_out + r * kPanelColumns, s.lo[r]);
      store(a.partial_out + r * kPanelColumns + 16, s.hi[r]);
    }
    return;
  }
  F bias_lo = F::zero(), bias_hi = F::zero();
  alignas(64) float padded_bias[kPanelColumns] = {};
  if (a.bias != nullptr) {
    std::memcpy(padded_bias, a.bias, static_cast<std::size_t>(a.columns) * sizeof(float));
    bias_lo = load<F>(padded_bias);
    bias_hi = load<F>(padded_bias + 16);
  }
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) {
    // NOTE: the bias is added after the sum, not used as its start, as at::addmm's beta=1
    // does; without one nothing is added (0 + -0 would turn a -0 into +0).
    F v0 = a.bias != nullptr ? s.lo[r] + bias_lo : s.lo[r];
    F v1 = a.bias != nullptr ? s.hi[r] + bias_hi : s.hi[r];
    if (a.residual != nullptr) {  // the finished product, rounded, then the add: as at::add
      const float* residual = a.residual + r * a.ldo;
      if (a.columns == kPanelColumns) {
        v0 = load<F>(residual) + v0;
        v1 = load<F>(residual + 16) + v1;
      } else {
        alignas(64) float padded[kPanelColumns] = {};
        std::memcpy(padded, residual, static_cast<std::size_t>(a.columns) * sizeof(float));
        v0 = load<F>(padded) + v0;
        v1 = load<F>(padded + 16) + v1;
      }
    }
    float* row = a.out + r * a.ldo;
    if (a.columns == kPanelColumns) {
      store(row, v0);
      store(row + 16, v1);
    } else {
      alignas(64) float tmp[kPanelColumns];
      store(tmp, v0);
      store(tmp + 16, v1);
      std::memcpy(row, tmp, static_cast<std::size_t>(a.columns) * sizeof(float));
    }
  }
}

template <typename L, int kRows>
[[gnu::always_inline]] inline void panel_block(const BlockArgs& a) {
  using F = typename L::F;
  Sums<L, kRows> s;
  start_sums(a, s);
  const float* w = a.panel;
  const float* rows[kRows];
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) rows[r] = a.x + r * a.ldx;
  Prefetcher prefetcher;
  for (std::int64_t k = 0; k < a.in; ++k, w += kPanelColumns) {
    prefetcher.step(a);
    const F w0 = load<F>(w), w1 = load<F>(w + 16);
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
      const float input = rows[r][k];
      s.lo[r] += input * w0;
      s.hi[r] += input * w1;
    }
  }
  finish_sums(a, s);
}

// Quantized tiles (quantized_panels.h) expanded in registers: the vector form of
// expand_tile_reference() (quantized_panels.cpp), the same arithmetic per lane. Q4_1's
// d * q + m contracts to an FMA where the target has one; d * q is exact, so the FMA rounds
// as the reference's multiply-then-add does.
// NOTE: the codes are laid out so that every step is a 32-bit lane operation (shift, and,
// convert, multiply-add), which GCC vectorizes for every copy from the same source; widening
// bytes to ints (__builtin_convertvector from 16 bytes) became byte-by-byte scalar code in
// GCC 12, and expanded far slower than the memory it saved.
static_assert(std::endian::native == std::endian::little, "the code lanes hold input j in byte j");

// quantized_panels.h's tile layout as compile-time constants of one format.
template <PanelFormat kFormat>
struct TileGeometry {
  static constexpr bool kFourBit = tile_four_bit(kFormat);
  static constexpr bool kOffset = tile_has_offset(kFormat);
  static constexpr std::int64_t kHeaderBytes = tile_header_bytes(kFormat);
  static constexpr std::int64_t kGroupBytes = tile_group_bytes(kFormat);
  static constexpr std::int64_t kBytes = tile_bytes(kFormat);
};

// A tile's scales (and offsets) for columns 0-15 and 16-31.
template <typename L>
struct TileScales {
  typename L::F d0, d1, m0, m1;
};

template <typename L, PanelFormat kFormat>
[[gnu::always_inline]] inline TileScales<L> load_scales(const std::byte* tile) {
  using F = typename L::F;
  const auto* header = reinterpret_cast<const float*>(tile);  // read through memcpy (load)
  TileScales<L> s{load<F>(header), load<F>(header + 16), F::zero(), F::zero()};
  if constexpr (TileGeometry<kFormat>::kOffset) {
    s.m0 = load<F>(header + 32);
    s.m1 = load<F>(header + 48);
  }
  return s;
}

// Input 4g + j of a group whose code lanes are `first` (and `second`, 8-bit): lane c holds
// byte j of each input; 4-bit, columns c (low nibble) and c + 16 (high); 8-bit, column c in
// `first` and c + 16 in `second`.
template <typename L, PanelFormat kFormat>
[[gnu::always_inline]] inline void expand_input(const typename L::I& first, const typename L::I& second, int j,
                                                const TileScales<L>& s, typename L::F& w0, typename L::F& w1) {
  using lanes::to_float;
  if constexpr (TileGeometry<kFormat>::kFourBit) {
    typename L::I lo = (first >> (8 * j)) & 0x0F, hi = (first >> (8 * j + 4)) & 0x0F;
    if constexpr (kFormat == PanelFormat::kQ4_0) {
      lo = lo - 8;
      hi = hi - 8;
    }
    w0 = s.d0 * to_float<L>(lo);
    w1 = s.d1 * to_float<L>(hi);
  } else {  // sign-extend byte j: to the top, then an arithmetic shift down
    w0 = to_float<L>((first << (24 - 8 * j)) >> 24) * s.d0;
    w1 = to_float<L>((second << (24 - 8 * j)) >> 24) * s.d1;
  }
  if constexpr (TileGeometry<kFormat>::kOffset) {
    w0 += s.m0;
    w1 += s.m1;
  }
}

// Expands `count` tiles into dst, [input][32 columns] floats.
template <typename L, PanelFormat kFormat>
[[gnu::always_inline]] inline void expand_tiles(const std::byte* tiles, std::int64_t count, float* dst) {
  using G = TileGeometry<kFormat>;
  using I = typename L::I;
  for (std::int64_t t = 0; t < count; ++t) {
    const std::byte* tile = tiles + t * G::kBytes;
    const TileScales<L> scales = load_scales<L, kFormat>(tile);
    const std::byte* group = tile + G::kHeaderBytes;
    for (std::int64_t g = 0; g < kTileInputs / 4; ++g, group += G::kGroupBytes) {
      const I first = load<I>(group);
      const I second = G::kFourBit ? I::zero() : load<I>(group + 64);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j, dst += kPanelColumns) {
        typename L::F w0, w1;
        expand_input<L, kFormat>(first, second, j, scales, w0, w1);
        store(dst, w0);
        store(dst + 16, w1);
      }
    }
  }
}

// One quantized panel times one small block of rows, each input expanded in registers and
// used at once (no buffer): for a few rows, storing and reloading the expanded floats cost
// as much as the products. Same sums as panel_block over expand_tiles' output.
template <typename L, int kRows, PanelFormat kFormat>
[[gnu::always_inline]] inline void tile_block(const BlockArgs& a) {
  using G = TileGeometry<kFormat>;
  using I = typename L::I;
  Sums<L, kRows> s;
  start_sums(a, s);
  const float* rows[kRows];
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) rows[r] = a.x + r * a.ldx;
  Prefetcher prefetcher;
  const std::byte* tile = a.tiles;
  for (std::int64_t k0 = 0; k0 < a.in; k0 += kTileInputs, tile += G::kBytes) {
    const TileScales<L> scales = load_scales<L, kFormat>(tile);
    const std::byte* group = tile + G::kHeaderBytes;
    for (std::int64_t g = 0; g < kTileInputs / 4; ++g, group += G::kGroupBytes) {
      const I first = load<I>(group);
      const I second = G::kFourBit ? I::zero() : load<I>(group + 64);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        prefetcher.step(a);
        typename L::F w0, w1;
        expand_input<L, kFormat>(first, second, j, scales, w0, w1);
        const std::int64_t k = k0 + 4 * g + j;
#pragma GCC unroll 16
        for (int r = 0; r < kRows; ++r) {
          const float input = rows[r][k];
          s.lo[r] += input * w0;
          s.hi[r] += input * w1;
        }
      }
    }
  }
  finish_sums(a, s);
}

using BlockKernel = void (*)(const BlockArgs&);

using ExpandKernel = void (*)(const std::byte* tiles, std::int64_t count, float* dst);

// NOTE: the three structs below differ only in their target attribute and lane set, which an
// attribute cannot take as a template argument; each instantiates the same always-inline
// bodies for its instruction set.
// One copy of the kernels per instruction set (the same source compiled for each target),
// with the widest row blocks its registers hold: AVX-512 has 32 vector registers (24
// accumulators for 12 rows x 32 columns, 2 panel rows, a broadcast; for quantized tiles
// expanded in registers, 16 accumulators for 8 rows beside 4 scale registers and the codes);
// AVX2 has 16 of half the width (12 accumulators for 3 rows); SSE2 16 of a quarter (8 for
// one row).
struct GenericCopy {
  using L = lanes::GenericLanes;
  template <int kRows>
  static void block(const BlockArgs& a) {
    panel_block<L, kRows>(a);
  }
  template <int kRows, PanelFormat kFormat>
  static void tile(const BlockArgs& a) {
    tile_block<L, kRows, kFormat>(a);
  }
  template <PanelFormat kFormat>
  static void expand(const std::byte* tiles, std::int64_t count, float* dst) {
    expand_tiles<L, kFormat>(tiles, count, dst);
  }
};

struct Avx512Copy {
  using L = lanes::Avx512Lanes;
  template <int kRows>
  KVSAFE_TARGET_AVX512 static void block(const BlockArgs& a) {
    panel_block<L, kRows>(a);
  }
  template <int kRows, PanelFormat kFormat>
  KVSAFE_TARGET_AVX512 static void tile(const BlockArgs& a) {
    tile_block<L, kRows, kFormat>(a);
  }
  template <PanelFormat kFormat>
  KVSAFE_TARGET_AVX512 static void expand(const std::byte* tiles, std::int64_t count, float* dst) {
    expand_tiles<L, kFormat>(tiles, count, dst);
  }
};

struct Avx2Copy {
  using L = lanes::Avx2Lanes;
  template <int kRows>
  KVSAFE_TARGET_AVX2 static void block(const BlockArgs& a) {
    panel_block<L, kRows>(a);
  }
  template <int kRows, PanelFormat kFormat>
  KVSAFE_TARGET_AVX2 static void tile(const BlockArgs& a) {
    tile_block<L, kRows, kFormat>(a);
  }
  template <PanelFormat kFormat>
  KVSAFE_TARGET_AVX2 static void expand(const std::byte* tiles, std::int64_t count, float* dst) {
    expand_tiles<L, kFormat>(tiles, count, dst);
  }
};

// A copy's kernels by row count (entry r - 1 takes r rows) and by panel format.
template <typename Copy, int kRows, int kTileRows>
struct CopyTables {
  template <std::size_t... I>
  static constexpr std::array<BlockKernel, sizeof...(I)> blocks(std::index_sequence<I...>) {
    return {&Copy::template block<static_cast<int>(I) + 1>...};
  }
  template <PanelFormat kFormat, std::size_t... I>
  static constexpr std::array<BlockKernel, sizeof...(I)> tiles(std::index_sequence<I...>) {
    return {&Copy::template tile<static_cast<int>(I) + 1, kFormat>...};
  }
  static constexpr auto kBlocks = blocks(std::make_index_sequence<kRows>());
  static constexpr auto kQ4_0 = tiles<PanelFormat::kQ4_0>(std::make_index_sequence<kTileRows>());
  static constexpr auto kQ4_1 = tiles<PanelFormat::kQ4_1>(std::make_index_sequence<kTileRows>());
  static constexpr auto kQ8_0 = tiles<PanelFormat::kQ8_0>(std::make_index_sequence<kTileRows>());
};

struct KernelSet {
  CpuKernels copy;
  int max_rows;                                    // float panels: the largest row block
  const BlockKernel* kernels;                      // kernels[r - 1] takes r rows
  int max_tile_rows;                               // quantized panels expanded in registers: the largest row block
  std::array<const BlockKernel*, 4> tile_kernels;  // by PanelFormat, then [r - 1] (kFloat32: none)
  std::array<ExpandKernel, 4> expand;              // by PanelFormat (kFloat32: none)
};

static_assert(static_cast<int>(PanelFormat::kQ4_0) == 1 && static_cast<int>(PanelFormat::kQ4_1) == 2 &&
              static_cast<int>(PanelFormat::kQ8_0) == 3);

template <typename Copy, int kRows, int kTileRows>
constexpr KernelSet make_kernel_set(CpuKernels copy) {
  using T = CopyTables<Copy, kRows, kTileRows>;
  return {copy,
          kRows,
          T::kBlocks.data(),
          kTileRows,
          {nullptr, T::kQ4_0.data(), T::kQ4_1.data(), T::kQ8_0.data()},
          {nullptr, &Copy::template expand<PanelFormat::kQ4_0>, &Copy::template expand<PanelFormat::kQ4_1>,
           &Copy::template expand<PanelFormat::kQ8_0>}};
}

// Row blocks of the AVX2 and baseline copies (see the NOTE above GenericCopy).
constexpr int kAvx2Rows = 3, kAvx2TileRows = 2, kGenericRows = 1, kGenericTileRows = 1;

constexpr KernelSet kGenericSet = make_kernel_set<GenericCopy, kGenericRows, kGenericTileRows>(CpuKernels::kGeneric);
constexpr KernelSet kAvx512Set = make_kernel_set<Avx512Copy, 12, 8>(CpuKernels::kAvx512);
constexpr KernelSet kAvx2Set = make_kernel_set<Avx2Copy, kAvx2Rows, kAvx2TileRows>(CpuKernels::kAvx2);

// The kernels of the copy common/cpu_kernels.h chose.
const KernelSet& chosen_kernels() {
  return *lanes::pick_copy<const KernelSet*>({.avx512 = &kAvx512Set, .avx2 = &kAvx2Set, .generic = &kGenericSet});
}

// Below this many multiply-adds a call is not worth waking the pool for.
constexpr std::int64_t kSplitMinWork = std::int64_t{1} << 18;
// The activation rows one pass over a thread's panels holds: about 384 KiB of inputs,
// which stay in the core's L2 beside the panel being read.
constexpr std::int64_t kChunkBytes = std::int64_t{384} << 10;

// A 64-byte aligned float buffer (one cache line per 16 floats).
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(std::int64_t count)
      : data_(static_cast<float*>(std::aligned_alloc(64, static_cast<std::size_t>((count * 4 + 63) / 64 * 64)))) {
    KVSAFE_CHECK(data_ != nullptr, "packed_matmul: out of memory for ", count, " floats of scratch");
  }
  float* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
};

struct RowBlock {
  std::int64_t first, rows;  // x rows [first, first + rows)
};

// Row blocks of max_rows, then the rest (12 + 12 + 8, not 11 + 11 + 10).
// NOTE: a block of 10 or 11 rows takes as long per input as one of 12 (the kernel's cost is
// per block, not per row), so full blocks first and one smaller block last is faster than
// even blocks (engine/README.md, "Measured").
std::vector<RowBlock> row_blocks(std::int64_t m, int max_rows) {
  const std::int64_t count = (m + max_rows - 1) / max_rows;
  std::vector<RowBlock> blocks;
  blocks.reserve(static_cast<std::size_t>(count));
  std::int64_t first = 0;
  for (std::int64_t b = 0; b < count; ++b) {
    const std::int64_t rows = std::min<std::int64_t>(max_rows, m - first);
    blocks.push_back({first, rows});
    first += rows;
  }
  return blocks;
}

}  // namespace

std::int64_t packed_floats(std::int64_t in, std::int64_t out) {
  return (out + kPanelColumns - 1) / kPanelColumns * in * kPanelColumns;
}

void pack_panels(const float* w, std::int64_t in, std::int64_t out, float* panels) {
  const std::int64_t count = (out + kPanelColumns - 1) / kPanelColumns;
  for (std::int64_t p = 0; p < count; ++p) {
    float* panel = panels + p * in * kPanelColumns;
    const std::int64_t columns = std::min(kPanelColumns, out - p * kPanelColumns);
    for (std::int64_t c = 0; c < kPanelColumns; ++c) {
      if (c >= columns) {
        for (std::int64_t k = 0; k < in; ++k) panel[k * kPanelColumns + c] = 0.0f;
        continue;
      }
      const float* row = w + (p * kPanelColumns + c) * in;
      for (std::int64_t k = 0; k < in; ++k) panel[k * kPanelColumns + c] = row[k];
    }
  }
}

void unpack_column(const float* panels, std::int64_t in, std::int64_t column, float* dst) {
  const float* panel = panels + column / kPanelColumns * in * kPanelColumns + column % kPanelColumns;
  for (std::int64_t k = 0; k < in; ++k) dst[k] = panel[k * kPanelColumns];
}

namespace {

// An empty sum (in == 0) is the bias, or zeros; then the residual.
void write_empty_sums(std::int64_t m, std::span<const PackedProduct> products, const PairEpilogue* pair) {
  for (const PackedProduct& p : products) {
    for (std::int64_t row = 0; row < m; ++row) {
      for (std::int64_t c = 0; c < p.n; ++c) {
        const float sum = p.bias != nullptr ? p.bias[c] : 0.0f;
        p.out[row * p.n + c] = p.residual != nullptr ? p.residual[row * p.n + c] + sum : sum;
      }
    }
  }
  if (pair != nullptr) pair->run(pair->context, products[0], products[1], 0, m, 0, products[0].n);
}

constexpr std::int64_t kSliceInputs = 128;  // x 32 columns x 4 bytes = 16 KiB

// What one packed_matmul call runs, worked out once before any thread starts: the row blocks,
// the panels of every product in the order they run, and the passes over the rows.
struct MatmulPlan {
  const float* x = nullptr;
  std::int64_t in = 0;
  std::span<const PackedProduct> products;
  const PairEpilogue* pair = nullptr;
  const KernelSet* kernels = nullptr;
  std::vector<RowBlock> blocks;
  // Panels of all products, end to end (with a pair epilogue, interleaved: panel j of the
  // first product, then of the second): (product, panel index within it).
  std::vector<std::pair<std::size_t, std::int64_t>> panels;
  std::vector<std::int64_t> panel_bytes;  // a panel's bytes, per product (its format)
  // Passes: [first, last) of blocks whose rows fit kChunkBytes (at least one block each).
  std::vector<std::pair<std::size_t, std::size_t>> chunks;
  std::int64_t n_total = 0;        // output columns of all products
  std::int64_t largest_chunk = 0;  // rows of the largest pass
  // Quantized panels: for at most max_tile_rows rows (one block), each input is expanded in
  // registers as it is used; for more, a slice of inputs at a time is expanded into a buffer
  // in L1 that every row block then goes over, the sums carried from slice to slice.
  // NOTE: the whole panel expanded at once spilled to L2 and cost more than the memory
  // traffic it saved (engine/README.md).
  bool tiles_in_registers = false;
  bool any_sliced = false;  // some product expands slices (it needs the scratch buffers)

  const char* panel_data(std::int64_t p) const {
    const auto [product_index, panel] = panels[static_cast<std::size_t>(p)];
    return static_cast<const char*>(products[product_index].panels) + panel * panel_bytes[product_index];
  }
};

MatmulPlan make_plan(const float* x, std::int64_t m, std::int64_t in, std::span<const PackedProduct> products,
                     const PairEpilogue* pair) {
  MatmulPlan plan;
  plan.x = x;
  plan.in = in;
  plan.products = products;
  plan.pair = pair;
  plan.kernels = &chosen_kernels();
  plan.blocks = row_blocks(m, plan.kernels->max_rows);
  for (std::size_t i = 0; i < products.size(); ++i) {
    KVSAFE_ASSERT(products[i].panels != nullptr && products[i].out != nullptr);
    KVSAFE_ASSERT(products[i].format == PanelFormat::kFloat32 || in % kTileInputs == 0,
                  "packed_matmul: quantized panels take whole blocks of 32 inputs, not ", in);
    plan.n_total += products[i].n;
    if (pair == nullptr) {
      for (std::int64_t p = 0; p * kPanelColumns < products[i].n; ++p) plan.panels.emplace_back(i, p);
    }
    plan.panel_bytes.push_back(packed_bytes(products[i].format, in, kPanelColumns));
  }
  if (pair != nullptr) {
    for (std::int64_t p = 0; p * kPanelColumns < products[0].n; ++p) {
      plan.panels.emplace_back(0, p);
      plan.panels.emplace_back(1, p);
    }
  }
  const std::vector<RowBlock>& blocks = plan.blocks;
  const std::int64_t chunk_rows =
      std::max<std::int64_t>(1, kChunkBytes / (in * static_cast<std::int64_t>(sizeof(float))));
  for (std::size_t first = 0; first < blocks.size();) {
    std::size_t last = first + 1;
    while (last < blocks.size() && blocks[last].first + blocks[last].rows - blocks[first].first <= chunk_rows) ++last;
    plan.chunks.emplace_back(first, last);
    plan.largest_chunk =
        std::max(plan.largest_chunk, blocks[last - 1].first + blocks[last - 1].rows - blocks[first].first);
    first = last;
  }
  plan.tiles_in_registers = m <= plan.kernels->max_tile_rows;
  plan.any_sliced =
      !plan.tiles_in_registers && std::any_of(products.begin(), products.end(),
                                              [](const PackedProduct& p) { return p.format != PanelFormat::kFloat32; });
  return plan;
}

// NOTE: 64-byte aligned, as panels are: malloc's 16-byte alignment split every vector load
// and store of the expanded weights over two cache lines.
struct Scratch {
  AlignedFloats expanded;  // [kSliceInputs][32]
  AlignedFloats partial;   // [rows of a chunk][32]
};

// Panel p times the blocks of one pass, while the lines of panel `next` (or none, -1) come in.
void run_panel(const MatmulPlan& plan, std::int64_t p, const std::pair<std::size_t, std::size_t>& chunk,
               std::int64_t next, Scratch& scratch) {
  const KernelSet& kernels = *plan.kernels;
  const std::int64_t in = plan.in;
  const auto [product_index, panel] = plan.panels[static_cast<std::size_t>(p)];
  const PackedProduct& product = plan.products[product_index];
  const std::int64_t column = panel * kPanelColumns;
  const auto format = static_cast<std::size_t>(product.format);
  const bool quantized = product.format != PanelFormat::kFloat32;
  const bool sliced = quantized && !plan.tiles_in_registers;
  const std::int64_t slices = sliced ? (in + kSliceInputs - 1) / kSliceInputs : 1;
  const auto blocks_in_chunk = static_cast<std::int64_t>(chunk.second - chunk.first);
  const char* prefetch = next >= 0 ? plan.panel_data(next) : nullptr;
  const std::int64_t prefetch_lines =
      next >= 0 ? plan.panel_bytes[plan.panels[static_cast<std::size_t>(next)].first] / 64 : 0;
  const std::int64_t calls = slices * blocks_in_chunk;
  const std::int64_t chunk_first_row = plan.blocks[chunk.first].first;
  for (std::int64_t slice = 0; slice < slices; ++slice) {
    const std::int64_t k0 = slice * kSliceInputs;
    const std::int64_t k_count = sliced ? std::min(kSliceInputs, in - k0) : in;
    if (sliced) {
      kernels.expand[format](
          reinterpret_cast<const std::byte*>(plan.panel_data(p)) + k0 / kTileInputs * tile_bytes(product.format),
          k_count / kTileInputs, scratch.expanded.data());
    }
    for (std::size_t b = chunk.first; b < chunk.second; ++b) {
      const RowBlock& block = plan.blocks[b];
      // Call i of the panel prefetches the i-th share of the next panel's lines.
      const std::int64_t i = slice * blocks_in_chunk + static_cast<std::int64_t>(b - chunk.first);
      const std::int64_t line_first = prefetch_lines * i / calls;
      const std::int64_t line_last = prefetch_lines * (i + 1) / calls;
      float* partial = sliced ? scratch.partial.data() + (block.first - chunk_first_row) * kPanelColumns : nullptr;
      const BlockArgs args{
          .x = plan.x + block.first * in + k0,
          .ldx = in,
          .panel = !quantized ? reinterpret_cast<const float*>(plan.panel_data(p))
                   : sliced   ? scratch.expanded.data()
                              : nullptr,
          .tiles = quantized && !sliced ? reinterpret_cast<const std::byte*>(plan.panel_data(p)) : nullptr,
          .in = k_count,
          .out = product.out + block.first * product.n + column,
          .ldo = product.n,
          .columns = std::min(kPanelColumns, product.n - column),
          .bias = product.bias != nullptr ? product.bias + column : nullptr,
          .residual = product.residual != nullptr ? product.residual + block.first * product.n + column : nullptr,
          .partial_in = slice > 0 ? partial : nullptr,
          .partial_out = slice + 1 < slices ? partial : nullptr,
          .prefetch = prefetch != nullptr ? prefetch + line_first * 64 : nullptr,
          .prefetch_lines = line_last - line_first};
      if (quantized && !sliced) {
        kernels.tile_kernels[format][block.rows - 1](args);
      } else {
        kernels.kernels[block.rows - 1](args);
      }
    }
  }
  if (plan.pair != nullptr && product_index == 1) {
    const RowBlock& last_block = plan.blocks[chunk.second - 1];
    plan.pair->run(plan.pair->context, plan.products[0], product, chunk_first_row,
                   last_block.first + last_block.rows - chunk_first_row, column,
                   std::min(kPanelColumns, product.n - column));
  }
}

// Panels [first, last) over every pass, each panel prefetching the one after it.
void run_panels(const MatmulPlan& plan, std::int64_t first, std::int64_t last) {
  if (first >= last) return;
  Scratch scratch;
  if (plan.any_sliced) {
    scratch.expanded = AlignedFloats(kSliceInputs * kPanelColumns);
    scratch.partial = AlignedFloats(plan.largest_chunk * kPanelColumns);
  }
  for (const auto& chunk : plan.chunks) {
    for (std::int64_t p = first; p < last; ++p) run_panel(plan, p, chunk, p + 1 < last ? p + 1 : -1, scratch);
  }
}

}  // namespace

void packed_matmul(const float* x, std::int64_t m, std::int64_t in, std::span<const PackedProduct> products,
                   const PairEpilogue* pair) {
  if (m == 0 || products.empty()) return;
  KVSAFE_ASSERT(pair == nullptr || (products.size() == 2 && products[0].n == products[1].n),
                "packed_matmul: a pair epilogue takes two products of the same width");
  if (in == 0) {
    write_empty_sums(m, products, pair);
    return;
  }
  const MatmulPlan plan = make_plan(x, m, in, products, pair);
  const auto panel_count = static_cast<std::int64_t>(plan.panels.size());
  const bool split = !at::in_parallel_region() && at::get_num_threads() > 1 && m * plan.n_total * in >= kSplitMinWork;
  if (!split) {
    run_panels(plan, 0, panel_count);
    return;
  }
  // NOTE: even shares of panels. Threads taking runs of panels from a shared counter instead
  // (in case one thread's share of the memory bandwidth lags) measured slower (engine/README.md).
  const std::int64_t threads = at::get_num_threads();
  std::int64_t per_thread = (panel_count + threads - 1) / threads;
  if (pair != nullptr) per_thread += per_thread % 2;  // a pair's two panels on one thread
  at::parallel_for(0, threads, 1, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t t = first; t < last; ++t) {
      run_panels(plan, std::min(panel_count, t * per_thread), std::min(panel_count, (t + 1) * per_thread));
    }
  });
}

void expand_tile(PanelFormat format, const std::byte* tile, float* dst) {
  KVSAFE_ASSERT(format != PanelFormat::kFloat32, "expand_tile: not a quantized format");
  chosen_kernels().expand[static_cast<std::size_t>(format)](tile, 1, dst);
}

CpuKernels packed_matmul_kernels() {
  return chosen_kernels().copy;
}

}  // namespace kvsafe::engine
