// GGUF q4_0 / q4_1 / q8_0 matrices kept quantized (engine/quantized_panels.h) and multiplied by
// the packed kernels (engine/packed_gemm.h). The promise is exactness: every weight expands to
// the reference dequantizer's float (modelfile/gguf_dequantize.h, itself checked bit for bit
// against the `gguf` package), and every product has the bits of the same product over float
// panels of the dequantized matrix, on every copy of the kernels, at every thread count and
// row count (the in-register path for a few rows, the sliced one for more).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/cpu_kernels.h"
#include "common/error.h"
#include "engine/packed_gemm.h"
#include "engine/quantized_panels.h"
#include "engine/transformer_blocks.h"
#include "modelfile/gguf_dequantize.h"
#include "tests/testing/cpu_copies.h"

namespace kvsafe::engine {
namespace {

struct FormatCase {
  PanelFormat format;
  GgmlType type;
  int block_bytes;
  const char* name;
};
const std::vector<FormatCase> kFormats{{PanelFormat::kQ4_0, GgmlType::kQ4_0, 18, "q4_0"},
                                       {PanelFormat::kQ4_1, GgmlType::kQ4_1, 20, "q4_1"},
                                       {PanelFormat::kQ8_0, GgmlType::kQ8_0, 34, "q8_0"}};

// An fp16 bit pattern for a scale: mostly ordinary magnitudes of either sign, sometimes zero
// (+0 and -0, which the expansion must keep) or subnormal. Finite: a file with inf or NaN
// scales is kept as floats (load_quantized_panels refuses them).
std::uint16_t random_scale(std::mt19937& rng) {
  const std::uint32_t pick = rng() % 16;
  const std::uint16_t sign = (rng() & 1U) != 0 ? 0x8000 : 0;
  if (pick == 0) return sign;                                                    // +-0
  if (pick == 1) return static_cast<std::uint16_t>(sign | (1 + rng() % 0x3FF));  // subnormal
  const auto exponent = static_cast<std::uint16_t>(5 + rng() % 20);              // 2^-10 .. 2^9
  return static_cast<std::uint16_t>(sign | (exponent << 10) | (rng() & 0x3FF));
}

// `rows` x `in` weights as ggml blocks of `f`, random codes and scales.
std::vector<std::byte> random_blocks(const FormatCase& f, std::int64_t rows, std::int64_t in, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const std::int64_t blocks = rows * in / 32;
  std::vector<std::byte> out(static_cast<std::size_t>(blocks * f.block_bytes));
  for (std::int64_t b = 0; b < blocks; ++b) {
    std::byte* block = out.data() + b * f.block_bytes;
    for (int i = 0; i < f.block_bytes; ++i) block[i] = static_cast<std::byte>(rng() & 0xFF);
    const std::uint16_t d = random_scale(rng);
    std::memcpy(block, &d, 2);
    if (f.format == PanelFormat::kQ4_1) {
      const std::uint16_t m = random_scale(rng);
      std::memcpy(block + 2, &m, 2);
    }
  }
  return out;
}

at::Tensor dequantized(const FormatCase& f, const std::vector<std::byte>& blocks, std::int64_t rows, std::int64_t in) {
  at::Tensor w = at::empty({rows, in});
  dequantize_to_float(f.type, blocks, std::span<float>(w.data_ptr<float>(), static_cast<std::size_t>(w.numel())));
  return w;
}

Matrix quantized_matrix(const FormatCase& f, const std::vector<std::byte>& blocks, const at::Tensor& w) {
  auto m = make_quantized_matrix(f.format, blocks, w);
  EXPECT_TRUE(m.has_value()) << f.name;
  return m.has_value() ? std::move(*m) : Matrix{};
}

// Restore ATen's thread count and the best kernel copy even when an assertion returns early.
struct ThreadsGuard {
  int before = at::get_num_threads();
  ~ThreadsGuard() { at::set_num_threads(before); }
};
struct KernelsGuard {
  ~KernelsGuard() { use_cpu_kernels(std::nullopt); }
};

template <typename Body>
void with_threads(int threads, Body body) {
  const ThreadsGuard guard;
  at::set_num_threads(threads);
  body();
}

const std::vector<CpuKernels> kCopies{CpuKernels::kAvx512, CpuKernels::kAvx2, CpuKernels::kGeneric};

TEST(QuantizedPanels, EveryWeightExpandsToTheDequantizersBits) {
  for (const FormatCase& f : kFormats) {
    // 45 outputs: one full panel and one of 13 columns; 96 inputs: three blocks per row.
    const std::vector<std::byte> blocks = random_blocks(f, 45, 96, 11);
    const at::Tensor w = dequantized(f, blocks, 45, 96);
    std::vector<std::byte> panels(static_cast<std::size_t>(packed_bytes(f.format, 96, 45)));
    ASSERT_EQ(panels.size(), static_cast<std::size_t>(2 * 3 * tile_bytes(f.format))) << f.name;
    ASSERT_TRUE(load_quantized_panels(f.format, blocks, {w.data_ptr<float>(), 45 * 96}, 96, 45, panels.data()));
    for (std::int64_t column = 0; column < 45; ++column) {
      std::vector<float> got(96);
      unpack_quantized_column(f.format, panels.data(), 96, column, got.data());
      // Bits, signed zeros included.
      EXPECT_EQ(std::memcmp(got.data(), w[column].data_ptr<float>(), 96 * sizeof(float)), 0) << f.name << " " << column;
    }
    // The padded columns of the last panel expand to zeros (their sums are never stored).
    std::vector<float> tile(32 * 32);
    for (std::int64_t t = 0; t < 3; ++t) {
      expand_tile_reference(f.format, panels.data() + (3 + t) * tile_bytes(f.format), tile.data());
      for (std::int64_t k = 0; k < 32; ++k) {
        for (std::int64_t c = 13; c < 32; ++c) {
          EXPECT_EQ(tile[static_cast<std::size_t>(k * 32 + c)], 0.0f) << f.name;
        }
      }
    }
  }
}

TEST(QuantizedPanels, AnyDifferenceFromTheExpectedFloatsIsRefused) {
  // load_quantized_panels is the load-time guard: a single different bit (here a -0 for a +0
  // would do too) and the matrix is kept as floats instead.
  const FormatCase& f = kFormats[1];
  const std::vector<std::byte> blocks = random_blocks(f, 32, 64, 12);
  at::Tensor w = dequantized(f, blocks, 32, 64);
  std::vector<std::byte> panels(static_cast<std::size_t>(packed_bytes(f.format, 64, 32)));
  ASSERT_TRUE(load_quantized_panels(f.format, blocks, {w.data_ptr<float>(), 32 * 64}, 64, 32, panels.data()));
  std::uint32_t bits;
  std::memcpy(&bits, w.data_ptr<float>() + 1000, 4);
  bits ^= 1U;
  std::memcpy(w.data_ptr<float>() + 1000, &bits, 4);
  EXPECT_FALSE(load_quantized_panels(f.format, blocks, {w.data_ptr<float>(), 32 * 64}, 64, 32, panels.data()));
  EXPECT_FALSE(make_quantized_matrix(f.format, blocks, w).has_value());
  // Inputs that are not whole blocks, or blocks of another shape, cannot be kept quantized.
  EXPECT_FALSE(make_quantized_matrix(f.format, blocks, at::zeros({32, 48})).has_value());
  EXPECT_FALSE(make_quantized_matrix(f.format, blocks, at::zeros({16, 64})).has_value());
}

TEST(QuantizedPanels, InfiniteOrNanScalesAreKeptAsFloats) {
  // The scalar expansion would match them bit for bit, but the kernels' FMA may pick another
  // NaN's payload than the reference's multiply-then-add: such a matrix stays float32.
  for (const FormatCase& f : kFormats) {
    for (const std::uint16_t bad : {std::uint16_t{0x7C00}, std::uint16_t{0xFE00}}) {  // +inf, a NaN
      for (const int offset : {0, 2}) {                                               // d, then m
        if (offset == 2 && f.format != PanelFormat::kQ4_1) continue;
        std::vector<std::byte> blocks = random_blocks(f, 32, 64, 20);
        std::memcpy(blocks.data() + 3 * f.block_bytes + offset, &bad, 2);
        const at::Tensor w = dequantized(f, blocks, 32, 64);
        EXPECT_FALSE(make_quantized_matrix(f.format, blocks, w).has_value()) << f.name << " " << bad;
      }
    }
  }
}

TEST(QuantizedPanels, EveryCopyExpandsATileLikeTheReference) {
  const KernelsGuard kernels_guard;
  for (const FormatCase& f : kFormats) {
    const std::vector<std::byte> blocks = random_blocks(f, 32, 32, 13);
    std::vector<std::byte> panels(static_cast<std::size_t>(packed_bytes(f.format, 32, 32)));
    pack_quantized_panels(f.format, blocks, 32, 32, panels.data());
    std::vector<float> want(32 * 32), got(32 * 32);
    expand_tile_reference(f.format, panels.data(), want.data());
    for (const CpuKernels copy : kCopies) {
      if (!use_cpu_kernels(copy)) continue;  // this CPU cannot run it (CpuCopyTest cases say so)
      expand_tile(f.format, panels.data(), got.data());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
          << f.name << " " << to_string(copy);
    }
    use_cpu_kernels(std::nullopt);
  }
}

// Each copy of the kernels, whichever CPU the tests run on.
class QuantizedPanelsCopy : public kvsafe::testing::CpuCopyTest {};

TEST_P(QuantizedPanelsCopy, ProductsHaveTheBitsOfFloatPanelsOnEveryRowCountAndThreadCount) {
  const CpuKernels copy = this->copy();
  EXPECT_EQ(packed_matmul_kernels(), copy);
  at::manual_seed(14);
  // 576 inputs: four slices of 128 and one of 64 when sliced; 96: a single short slice;
  // 3072: rows of 12 KiB, so 129 rows take several passes (chunks) over the panels.
  // Rows: every in-register block size of every copy (1-8), then sliced (9, 32, 129).
  struct Shape {
    std::int64_t in, out;
  };
  for (const FormatCase& f : kFormats) {
    for (const Shape s : {Shape{576, 70}, Shape{96, 200}, Shape{3072, 40}}) {
      const std::vector<std::byte> blocks = random_blocks(f, s.out, s.in, 15);
      const at::Tensor w = dequantized(f, blocks, s.out, s.in);
      const Matrix quantized = quantized_matrix(f, blocks, w);
      const Matrix floats = make_matrix(w);
      ASSERT_EQ(quantized.format, f.format);
      const at::Tensor bias = at::randn({s.out});
      for (const std::int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 32, 129}) {
        const at::Tensor x = at::randn({rows, s.in});
        at::Tensor want, want_bias;
        with_threads(1, [&] {
          want = linear_t(x, floats);
          want_bias = linear_t(x, floats, bias);
        });
        const at::Tensor aten = at::linear(x, w);
        EXPECT_TRUE(at::allclose(want, aten, 1e-4, 1e-4 * aten.abs().max().item<double>()))
            << f.name << " " << rows << " rows against ATen";
        for (const int threads : {1, 2}) {
          with_threads(threads, [&] {
            const std::string where = std::string(f.name) + " " + std::string(to_string(copy)) + " " +
                                      std::to_string(rows) + "x" + std::to_string(s.in) + "x" + std::to_string(s.out) +
                                      ", " + std::to_string(threads) + " threads";
            EXPECT_TRUE(at::equal(linear_t(x, quantized), want)) << where;
            EXPECT_TRUE(at::equal(linear_t(x, quantized, bias), want_bias)) << where << " with bias";
          });
        }
      }
    }
  }
}

KVSAFE_INSTANTIATE_CPU_COPIES(QuantizedPanelsCopy);

TEST(QuantizedPanels, GroupsMixFormatsAndARowKeepsItsBitsInAnyBatch) {
  at::manual_seed(16);
  // A group as a mixed-type GGUF file gives it (q4_1 q, q8_0 k, float v), split over threads.
  const std::vector<std::byte> q_blocks = random_blocks(kFormats[1], 96, 64, 17);
  const std::vector<std::byte> k_blocks = random_blocks(kFormats[2], 40, 64, 18);
  const at::Tensor q_w = dequantized(kFormats[1], q_blocks, 96, 64), k_w = dequantized(kFormats[2], k_blocks, 40, 64);
  const at::Tensor v_w = at::randn({32, 64});
  const Matrix q = quantized_matrix(kFormats[1], q_blocks, q_w), k = quantized_matrix(kFormats[2], k_blocks, k_w);
  const Matrix v = make_matrix(v_w);
  const std::vector<LinearWeights> group{{.matrix = &q, .bias = {}, .residual = {}},
                                         {.matrix = &k, .bias = {}, .residual = {}},
                                         {.matrix = &v, .bias = {}, .residual = {}}};
  const at::Tensor x = at::randn({40, 64});
  std::vector<at::Tensor> all;
  with_threads(2, [&] { all = linear_t_group(x, group); });
  ASSERT_EQ(all.size(), 3U);
  EXPECT_TRUE(at::equal(all[0], linear_t(x, make_matrix(q_w))));
  EXPECT_TRUE(at::equal(all[1], linear_t(x, make_matrix(k_w))));
  EXPECT_TRUE(at::equal(all[2], linear_t(x, v)));
  // Rows alone or in other batches (in registers below 9 rows, sliced above): the same bits.
  for (const std::int64_t first : {0, 7, 33}) {
    for (const std::int64_t rows : {1, 4, 7}) {
      const std::vector<at::Tensor> part = linear_t_group(x.narrow(0, first, rows), group);
      for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(at::equal(part[i], all[i].narrow(0, first, rows))) << first;
    }
  }
}

TEST(QuantizedPanels, AResidualIsAddedAfterTheLastSlice) {
  // Sliced products carry partial sums between slices of 128 inputs: the residual must come
  // once, after the last one; in registers (a few rows) it comes after the only pass.
  at::manual_seed(20);
  const FormatCase& f = kFormats[1];
  const std::vector<std::byte> blocks = random_blocks(f, 70, 320, 21);
  const at::Tensor w = dequantized(f, blocks, 70, 320);
  const Matrix q = quantized_matrix(f, blocks, w);
  for (const std::int64_t rows : {3, 32}) {
    const at::Tensor x = at::randn({rows, 320}), residual = at::randn({rows, 70});
    for (const int threads : {1, 2}) {
      with_threads(threads, [&] {
        EXPECT_TRUE(at::equal(linear_t(x, q, {}, residual), residual + linear_t(x, q))) << rows << ", " << threads;
      });
    }
  }
}

TEST(QuantizedPanels, SwigluAfterQuantizedGateAndUpHasTheBitsOfTheSeparateSteps) {
  // SmolLM2's MLP: q4_1 gate and up, silu(g) * u in their region (gated_mlp), after the last
  // slice of each up panel (sliced at 32 rows, in registers at 3).
  at::manual_seed(22);
  const FormatCase& f = kFormats[1];
  const std::vector<std::byte> gate_blocks = random_blocks(f, 80, 256, 23), up_blocks = random_blocks(f, 80, 256, 24);
  const Matrix gate = quantized_matrix(f, gate_blocks, dequantized(f, gate_blocks, 80, 256));
  const Matrix up = quantized_matrix(f, up_blocks, dequantized(f, up_blocks, 80, 256));
  const Matrix down = make_matrix(at::randn({24, 80}));
  for (const std::int64_t rows : {3, 32}) {
    const at::Tensor x = at::randn({rows, 256}) * 0.01;
    for (const int threads : {1, 2}) {
      with_threads(threads, [&] {
        EXPECT_TRUE(at::equal(gated_mlp(x, gate, up, down, "silu"),
                              linear_t(silu_mul_cpu(linear_t(x, gate), linear_t(x, up)), down)))
            << rows << " rows, " << threads << " threads";
      });
    }
  }
}

TEST(QuantizedPanels, ATiedEmbeddingReadsTheDequantizedRows) {
  const FormatCase& f = kFormats[2];  // SmolLM2's token embedding is q8_0
  const std::vector<std::byte> blocks = random_blocks(f, 50, 64, 19);
  const at::Tensor w = dequantized(f, blocks, 50, 64);
  ModelWeights weights;
  weights.lm_head = quantized_matrix(f, blocks, w);
  const at::Tensor tokens = at::tensor({3, 49, 0, 17}, at::kLong).view({2, 2});
  const at::Tensor rows = embed_tokens(weights, tokens);
  EXPECT_TRUE(at::equal(rows, at::embedding(w, tokens)));
  EXPECT_THROW(embed_tokens(weights, at::tensor({50}, at::kLong).view({1, 1})), InputError);
}

}  // namespace
}  // namespace kvsafe::engine
