// engine/packed_gemm.h: packed weight panels and their products with activation rows.

#include "engine/packed_gemm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <utility>
#include <vector>

#include "common/error.h"
#include "engine/lanes16.h"

namespace kvsafe::engine {
namespace {

using lanes::Lanes16;
using lanes::load16;
using lanes::store16;

// One panel times one block of `kRows` activation rows, read in place: per input k, one
// broadcast from each row. `panel` is [in][32].
// NOTE: packing the rows first ([in][rows], one contiguous broadcast stream) ran serially
// before each parallel region (2-3% of a decode step) and was slower even without that: 32.4
// against 31.7 ms for a SmolLM2 step's products at 32 rows, 282 against 300 GFLOP/s at 1024.
struct BlockArgs {
  const float* x;    // the block's first row
  std::int64_t ldx;  // x's row stride
  const float* panel;
  std::int64_t in;
  float* out;                   // the block's first row, at the panel's first column
  std::int64_t ldo;             // out's row stride
  std::int64_t columns;         // valid columns of this panel (32 except in the last)
  const float* bias;            // at the panel's first column, or nullptr
  const float* prefetch;        // lines of the next panel to bring into L2 meanwhile
  std::int64_t prefetch_lines;  // how many (64-byte lines, 16 floats each)
};

template <int kRows>
[[gnu::always_inline]] inline void panel_block(const BlockArgs& a) {
  Lanes16 lo[kRows], hi[kRows];
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) lo[r] = hi[r] = Lanes16{};
  const float* w = a.panel;
  const float* rows[kRows];
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) rows[r] = a.x + r * a.ldx;
  std::int64_t owed = 0, line = 0;  // prefetches due, times in; lines issued
  for (std::int64_t k = 0; k < a.in; ++k, w += kPanelColumns) {
    // NOTE: the next panel is requested while this one computes, or the first row block of
    // each panel waits on memory and streaming never overlaps compute (SmolLM2's matrices at
    // 32 rows, 2 threads, passive OpenMP threads: 67 ms a step without, 53 with two lines per
    // iteration until done, 42 spread evenly over the loop: bursts fill the line-fill buffers
    // and stall the loads that compute needs).
    for (owed += a.prefetch_lines; owed >= a.in; owed -= a.in, ++line) {
      __builtin_prefetch(a.prefetch + line * 16, 0, /*locality: L2=*/2);
    }
    const Lanes16 w0 = load16(w), w1 = load16(w + 16);
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
      const float input = rows[r][k];
      lo[r] += input * w0;
      hi[r] += input * w1;
    }
  }
  Lanes16 bias_lo{}, bias_hi{};
  alignas(64) float padded_bias[kPanelColumns] = {};
  if (a.bias != nullptr) {
    std::memcpy(padded_bias, a.bias, static_cast<std::size_t>(a.columns) * sizeof(float));
    bias_lo = load16(padded_bias);
    bias_hi = load16(padded_bias + 16);
  }
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) {
    // NOTE: the bias is added after the sum, not used as its start, as at::addmm's beta=1
    // does; without one nothing is added (0 + -0 would turn a -0 into +0).
    const Lanes16 v0 = a.bias != nullptr ? lo[r] + bias_lo : lo[r];
    const Lanes16 v1 = a.bias != nullptr ? hi[r] + bias_hi : hi[r];
    float* row = a.out + r * a.ldo;
    if (a.columns == kPanelColumns) {
      store16(row, v0);
      store16(row + 16, v1);
    } else {
      alignas(64) float tmp[kPanelColumns];
      store16(tmp, v0);
      store16(tmp + 16, v1);
      std::memcpy(row, tmp, static_cast<std::size_t>(a.columns) * sizeof(float));
    }
  }
}

using BlockKernel = void (*)(const BlockArgs&);

template <int kRows>
void block_generic(const BlockArgs& a) {
  panel_block<kRows>(a);
}

// One copy per instruction set, each with the widest row block its registers hold: AVX-512
// has 32 vector registers (24 accumulators for 12 rows x 32 columns, 2 panel rows, a
// broadcast); AVX2 has 16 of half the width; SSE2 16 of a quarter.
struct KernelSet {
  const char* name;
  int max_rows;
  const BlockKernel* kernels;  // kernels[r - 1] takes r rows
};

template <std::size_t... I>
constexpr std::array<BlockKernel, sizeof...(I)> generic_table(std::index_sequence<I...>) {
  return {&block_generic<static_cast<int>(I) + 1>...};
}
constexpr int kGenericRows = 2;
constexpr auto kGenericKernels = generic_table(std::make_index_sequence<kGenericRows>());

#if defined(__x86_64__) && defined(__GNUC__)
template <int kRows>
[[gnu::target("avx512f")]] void block_avx512(const BlockArgs& a) {
  panel_block<kRows>(a);
}
template <int kRows>
[[gnu::target("avx2,fma")]] void block_avx2(const BlockArgs& a) {
  panel_block<kRows>(a);
}
template <std::size_t... I>
constexpr std::array<BlockKernel, sizeof...(I)> avx512_table(std::index_sequence<I...>) {
  return {&block_avx512<static_cast<int>(I) + 1>...};
}
template <std::size_t... I>
constexpr std::array<BlockKernel, sizeof...(I)> avx2_table(std::index_sequence<I...>) {
  return {&block_avx2<static_cast<int>(I) + 1>...};
}
constexpr int kAvx512Rows = 12, kAvx2Rows = 3;
constexpr auto kAvx512Kernels = avx512_table(std::make_index_sequence<kAvx512Rows>());
constexpr auto kAvx2Kernels = avx2_table(std::make_index_sequence<kAvx2Rows>());
#endif

const KernelSet kGenericSet{"generic", kGenericRows, kGenericKernels.data()};
#if defined(__x86_64__) && defined(__GNUC__)
const KernelSet kAvx512Set{"avx512", kAvx512Rows, kAvx512Kernels.data()};
const KernelSet kAvx2Set{"avx2", kAvx2Rows, kAvx2Kernels.data()};
#endif

// The copies this CPU runs, best first.
const std::vector<const KernelSet*>& runnable_kernels() {
  static const std::vector<const KernelSet*> sets = [] {
    std::vector<const KernelSet*> out;
#if defined(__x86_64__) && defined(__GNUC__)
    if (lanes::cpu_has_avx512()) out.push_back(&kAvx512Set);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out.push_back(&kAvx2Set);
#endif
    out.push_back(&kGenericSet);
    return out;
  }();
  return sets;
}

std::atomic<const KernelSet*> g_chosen{nullptr};  // nullptr: the best

const KernelSet& chosen_kernels() {
  const KernelSet* chosen = g_chosen.load(std::memory_order_relaxed);
  return chosen != nullptr ? *chosen : *runnable_kernels().front();
}

// Below this many multiply-adds a call is not worth waking the pool for.
constexpr std::int64_t kSplitMinWork = std::int64_t{1} << 18;
// The activation rows one pass over a thread's panels holds: about 384 KiB of inputs,
// which stay in the core's L2 beside the panel being read.
constexpr std::int64_t kChunkBytes = std::int64_t{384} << 10;

struct RowBlock {
  std::int64_t first, rows;  // x rows [first, first + rows)
};

// Row blocks of at most max_rows, as even as possible (11 + 11 + 10 rather than 12 + 12 + 8).
std::vector<RowBlock> row_blocks(std::int64_t m, int max_rows) {
  const std::int64_t count = (m + max_rows - 1) / max_rows;
  std::vector<RowBlock> blocks;
  blocks.reserve(static_cast<std::size_t>(count));
  std::int64_t first = 0;
  for (std::int64_t b = 0; b < count; ++b) {
    const std::int64_t rows = m / count + (b < m % count ? 1 : 0);
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

void packed_matmul(const float* x, std::int64_t m, std::int64_t in, std::span<const PackedProduct> products) {
  if (m == 0 || products.empty()) return;
  if (in == 0) {  // empty sums: the bias, or zeros
    for (const PackedProduct& p : products) {
      for (std::int64_t row = 0; row < m; ++row) {
        for (std::int64_t c = 0; c < p.n; ++c) p.out[row * p.n + c] = p.bias != nullptr ? p.bias[c] : 0.0f;
      }
    }
    return;
  }
  const KernelSet& kernels = chosen_kernels();
  const std::vector<RowBlock> blocks = row_blocks(m, kernels.max_rows);

  // Panels of all products, end to end: (product, panel index within it).
  std::vector<std::pair<std::size_t, std::int64_t>> panels;
  std::int64_t n_total = 0;
  for (std::size_t i = 0; i < products.size(); ++i) {
    KVSAFE_ASSERT(products[i].panels != nullptr && products[i].out != nullptr);
    n_total += products[i].n;
    for (std::int64_t p = 0; p * kPanelColumns < products[i].n; ++p) panels.emplace_back(i, p);
  }
  const auto panel_count = static_cast<std::int64_t>(panels.size());

  const bool split = !at::in_parallel_region() && at::get_num_threads() > 1 && m * n_total * in >= kSplitMinWork;
  // Blocks per pass: their rows fit kChunkBytes (at least one block).
  const std::int64_t chunk_rows =
      std::max<std::int64_t>(1, kChunkBytes / (in * static_cast<std::int64_t>(sizeof(float))));
  std::vector<std::pair<std::size_t, std::size_t>> chunks;  // [first, last) of blocks
  for (std::size_t first = 0; first < blocks.size();) {
    std::size_t last = first + 1;
    while (last < blocks.size() && blocks[last].first + blocks[last].rows - blocks[first].first <= chunk_rows) ++last;
    chunks.emplace_back(first, last);
    first = last;
  }
  const std::int64_t panel_lines = in * kPanelColumns / 16;
  const auto panel_data = [&](std::int64_t p) {
    const auto [product_index, panel] = panels[static_cast<std::size_t>(p)];
    return products[product_index].panels + panel * in * kPanelColumns;
  };
  // One panel times the blocks of one chunk, while the lines of `next` (or nothing) come in.
  const auto run_panel = [&](std::int64_t p, const std::pair<std::size_t, std::size_t>& chunk, const float* next) {
    const auto [product_index, panel] = panels[static_cast<std::size_t>(p)];
    const PackedProduct& product = products[product_index];
    const std::int64_t column = panel * kPanelColumns;
    const auto blocks_in_chunk = static_cast<std::int64_t>(chunk.second - chunk.first);
    for (std::size_t b = chunk.first; b < chunk.second; ++b) {
      const RowBlock& block = blocks[b];
      // Block i of the chunk prefetches the i-th share of the next panel's lines.
      const auto i = static_cast<std::int64_t>(b - chunk.first);
      const std::int64_t line_first = panel_lines * i / blocks_in_chunk;
      const std::int64_t line_last = panel_lines * (i + 1) / blocks_in_chunk;
      const BlockArgs args{.x = x + block.first * in,
                           .ldx = in,
                           .panel = panel_data(p),
                           .in = in,
                           .out = product.out + block.first * product.n + column,
                           .ldo = product.n,
                           .columns = std::min(kPanelColumns, product.n - column),
                           .bias = product.bias != nullptr ? product.bias + column : nullptr,
                           .prefetch = next != nullptr ? next + line_first * 16 : nullptr,
                           .prefetch_lines = next != nullptr ? line_last - line_first : 0};
      kernels.kernels[block.rows - 1](args);
    }
  };
  // Panels [first, last) over every chunk, each panel prefetching the one after it.
  const auto run_range = [&](std::int64_t first, std::int64_t last) {
    for (const auto& chunk : chunks) {
      for (std::int64_t p = first; p < last; ++p) run_panel(p, chunk, p + 1 < last ? panel_data(p + 1) : nullptr);
    }
  };
  if (!split) {
    run_range(0, panel_count);
    return;
  }
  // NOTE: even shares of panels. Threads taking runs of panels from a shared counter instead
  // (in case one thread's share of the memory bandwidth lags) measured slower: 33-36 against
  // 33 ms for a SmolLM2 step's products at 32 rows.
  const std::int64_t threads = at::get_num_threads();
  const std::int64_t per_thread = (panel_count + threads - 1) / threads;
  at::parallel_for(0, threads, 1, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t t = first; t < last; ++t) {
      run_range(std::min(panel_count, t * per_thread), std::min(panel_count, (t + 1) * per_thread));
    }
  });
}

bool use_packed_matmul_kernels(const char* name) {
  if (name == nullptr) {
    g_chosen.store(nullptr, std::memory_order_relaxed);
    return true;
  }
  for (const KernelSet* set : runnable_kernels()) {
    if (std::strcmp(set->name, name) == 0) {
      g_chosen.store(set, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

const char* packed_matmul_kernels() {
  return chosen_kernels().name;
}

}  // namespace kvsafe::engine
