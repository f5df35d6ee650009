// The linear layers' CPU kernels (engine/packed_gemm.h) behind linear_t (engine/transformer_blocks.h).
// The products must equal ATen's at::linear to float rounding, and have the same bits for any
// thread count, any grouping of weights and any batch around a row, because the engine's
// outputs must not depend on how many cores a worker has (the MPI tests compare 2-thread and
// 1-thread workers row by row) nor on which prompts share a batch.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/cpu_kernels.h"
#include "common/error.h"
#include "engine/packed_gemm.h"
#include "engine/transformer_blocks.h"
#include "tests/testing/cpu_copies.h"

namespace kvsafe::engine {
namespace {

// Runs `body` with ATen's pool at `threads`, then restores it.
template <typename Body>
void with_threads(int threads, Body body) {
  const int before = at::get_num_threads();
  at::set_num_threads(threads);
  body();
  at::set_num_threads(before);
}

using kvsafe::testing::with_cpu_kernels;

struct Shape {
  std::int64_t rows, in, out;
};
// Decode rows (1, 4, 32), a prefill block (129 rows), widths that are not a multiple of the
// 32-column panel (200, 1000, 17, 33), SmolLM2's 576 -> 1536, a tiny product that stays on
// one thread, and 700 rows x 576 inputs, more than one pass's worth of packed rows.
const std::vector<Shape> kShapes{{1, 576, 1536}, {4, 64, 200}, {32, 576, 192}, {129, 96, 1000},
                                 {3, 8, 17},     {7, 300, 33}, {700, 576, 64}};

std::string name(const Shape& s) {
  return std::to_string(s.rows) + "x" + std::to_string(s.in) + "x" + std::to_string(s.out);
}

TEST(PackedGemm, PackingKeepsEveryWeightAndPadsWithZeros) {
  at::manual_seed(1);
  const at::Tensor w = at::randn({45, 7});  // 45 outputs: one full panel and one of 13 columns
  std::vector<float> panels(static_cast<std::size_t>(packed_floats(7, 45)), -1.0f);
  ASSERT_EQ(panels.size(), 2U * 7U * 32U);
  pack_panels(w.data_ptr<float>(), 7, 45, panels.data());
  for (std::int64_t column = 0; column < 45; ++column) {
    std::vector<float> got(7);
    unpack_column(panels.data(), 7, column, got.data());
    EXPECT_TRUE(at::equal(at::from_blob(got.data(), {7}), w[column])) << column;
  }
  for (std::int64_t k = 0; k < 7; ++k) {
    for (std::int64_t c = 13; c < 32; ++c) EXPECT_EQ(panels[static_cast<std::size_t>((7 + k) * 32 + c)], 0.0f);
  }
}

TEST(PackedGemm, LinearMatchesAtenAndHasTheSameBitsAtEveryThreadCount) {
  at::manual_seed(2);
  for (const Shape& s : kShapes) {
    const at::Tensor x = at::randn({s.rows, s.in}), weight = at::randn({s.out, s.in}), bias = at::randn({s.out});
    const Matrix w = make_matrix(weight);
    ASSERT_TRUE(w.panels.defined());
    const at::Tensor want = at::linear(x, weight), want_bias = at::linear(x, weight, bias);
    at::Tensor one_thread, one_thread_bias;
    with_threads(1, [&] {
      one_thread = linear_t(x, w);
      one_thread_bias = linear_t(x, w, bias);
    });
    EXPECT_TRUE(at::allclose(one_thread, want, 1e-5, 1e-4)) << name(s);
    EXPECT_TRUE(at::allclose(one_thread_bias, want_bias, 1e-5, 1e-4)) << name(s);
    // The bias is added after the sum, as at::addmm does: exactly the sum plus the bias.
    EXPECT_TRUE(at::equal(one_thread_bias, one_thread + bias)) << name(s);
    for (const int threads : {2, 3}) {
      with_threads(threads, [&] {
        EXPECT_TRUE(at::equal(linear_t(x, w), one_thread)) << name(s) << ", " << threads << " threads";
        EXPECT_TRUE(at::equal(linear_t(x, w, bias), one_thread_bias))
            << name(s) << " with bias, " << threads << " threads";
      });
    }
    // [batch, tokens, in] keeps its leading dims.
    EXPECT_EQ(linear_t(x.view({1, s.rows, s.in}), w).sizes(), (std::vector<std::int64_t>{1, s.rows, s.out}));
  }
}

TEST(PackedGemm, AResidualIsAddedToTheFinishedProductAsAnAddWould) {
  // pre_norm_layer's h = hidden + o_proj(x) and h + down(...) run as a product's last step:
  // the bits of at::add on linear_t's result, with and without a bias, for partial panels,
  // at every thread count, on every copy of the kernels, and for an empty inner dimension.
  at::manual_seed(7);
  std::vector<Shape> shapes = kShapes;
  shapes.push_back({5, 0, 40});
  for (const Shape& s : shapes) {
    const at::Tensor x = at::randn({s.rows, s.in}), weight = at::randn({s.out, s.in}), bias = at::randn({s.out});
    const at::Tensor residual = at::randn({s.rows, s.out});
    const Matrix w = make_matrix(weight);
    const at::Tensor want = residual + linear_t(x, w), want_bias = residual + linear_t(x, w, bias);
    for (const CpuKernels copy : {CpuKernels::kAvx512, CpuKernels::kAvx2, CpuKernels::kGeneric}) {
      with_cpu_kernels(copy, [&] {
        const at::Tensor plain = residual + linear_t(x, w), plain_bias = residual + linear_t(x, w, bias);
        for (const int threads : {1, 2}) {
          with_threads(threads, [&] {
            EXPECT_TRUE(at::equal(linear_t(x, w, {}, residual), plain))
                << name(s) << " " << to_string(copy) << ", " << threads;
            EXPECT_TRUE(at::equal(linear_t(x, w, bias, residual), plain_bias)) << name(s) << " " << to_string(copy);
          });
        }
      });
    }
    EXPECT_TRUE(at::equal(linear_t(x, w, bias, residual), want_bias)) << name(s);
    // [batch, tokens, out] residuals, and one that is not contiguous.
    EXPECT_TRUE(at::equal(linear_t(x.view({1, s.rows, s.in}), w, {}, residual.view({1, s.rows, s.out})),
                          want.view({1, s.rows, s.out})))
        << name(s);
    const at::Tensor transposed = residual.t().contiguous().t();
    EXPECT_TRUE(at::equal(linear_t(x, w, {}, transposed), want)) << name(s);
  }
  const at::Tensor x = at::randn({3, 8});
  const Matrix w = make_matrix(at::randn({17, 8}));
  EXPECT_THROW(linear_t(x, w, {}, at::randn({3, 16})), std::exception);
}

TEST(PackedGemm, SwigluInsideTheGateUpRegionHasTheBitsOfTheSeparateSteps) {
  // gated_mlp with packed weights runs silu(g) * u on each pair of finished gate/up panels
  // (packed_matmul's pair epilogue): the bits of silu_mul_cpu on the whole products, for
  // widths with partial panels and partial vectors, odd panel counts split over 2 and 3
  // threads (129 x 64 -> 200; the smaller cases stay on one thread), and 200 rows x 576
  // inputs (two passes of rows, the epilogue once per pass).
  at::manual_seed(8);
  struct Case {
    std::int64_t rows, in, n;
  };
  for (const Case& c : std::vector<Case>{{1, 96, 64}, {5, 96, 72}, {32, 96, 40}, {129, 64, 200}, {200, 576, 96}}) {
    const at::Tensor x = at::randn({c.rows, c.in}), residual = at::randn({c.rows, 48});
    // Weights at a model's scale (1/sqrt(fan-in)): activations of order 1, so that the
    // comparison with ATen's differently ordered sums can use fixed tolerances.
    const double gate_scale = 1.0 / std::sqrt(static_cast<double>(c.in));
    const at::Tensor gate_w = at::randn({c.n, c.in}) * gate_scale, up_w = at::randn({c.n, c.in}) * gate_scale;
    const at::Tensor down_w = at::randn({48, c.n}) / std::sqrt(static_cast<double>(c.n));
    const Matrix gate = make_matrix(gate_w), up = make_matrix(up_w), down = make_matrix(down_w);
    const std::string label = std::to_string(c.rows) + "x" + std::to_string(c.in) + "->" + std::to_string(c.n);
    at::Tensor want, want_residual;
    with_threads(1, [&] {
      want = linear_t(silu_mul_cpu(linear_t(x, gate), linear_t(x, up)), down);
      want_residual = residual + want;
    });
    EXPECT_TRUE(
        at::allclose(want, at::linear(at::silu(at::linear(x, gate_w)) * at::linear(x, up_w), down_w), 1e-4, 1e-3))
        << label;
    for (const int threads : {1, 2, 3}) {
      with_threads(threads, [&] {
        EXPECT_TRUE(at::equal(gated_mlp(x, gate, up, down, "silu"), want)) << label << ", " << threads << " threads";
        EXPECT_TRUE(
            at::equal(gated_mlp(x.view({1, c.rows, c.in}), gate, up, down, "silu", residual.view({1, c.rows, 48})),
                      want_residual.view({1, c.rows, 48})))
            << label << " with a residual, " << threads << " threads";
      });
    }
  }
}

TEST(PackedGemm, ARowHasTheSameBitsWhateverBatchItIsIn) {
  // Batch 1 against batch 8 in generation, prefill against decode: a row's output must not
  // depend on how many rows share the call (row blocks of other sizes, other passes).
  at::manual_seed(3);
  const at::Tensor x = at::randn({700, 576}), weight = at::randn({100, 576});
  const Matrix w = make_matrix(weight);
  const at::Tensor all = linear_t(x, w);
  for (const std::int64_t first : {0, 5, 31, 650}) {
    for (const std::int64_t rows : {1, 2, 7, 12, 13, 32, 50}) {
      const at::Tensor part = linear_t(x.narrow(0, first, rows), w);
      EXPECT_TRUE(at::equal(part, all.narrow(0, first, rows))) << "rows " << first << " + " << rows;
    }
  }
}

TEST(PackedGemm, GroupedProductsEqualSeparateOnes) {
  at::manual_seed(4);
  // q, k, v of a GQA layer with a bias (Qwen2); the split points of the panels land inside
  // different weights at 2 and 3 threads.
  const at::Tensor x = at::randn({2, 5, 96});
  const std::vector<at::Tensor> dense{at::randn({96, 96}), at::randn({40, 96}), at::randn({32, 96})};
  const std::vector<at::Tensor> biases{at::randn({96}), at::randn({40}), at::Tensor()};
  std::vector<Matrix> matrices;
  for (const at::Tensor& d : dense) matrices.push_back(make_matrix(d));
  std::vector<LinearWeights> weights;
  for (std::size_t i = 0; i < dense.size(); ++i)
    weights.push_back({.matrix = &matrices[i], .bias = biases[i], .residual = {}});
  std::vector<at::Tensor> separate;
  with_threads(1, [&] {
    for (const LinearWeights& w : weights) separate.push_back(linear_t(x, *w.matrix, w.bias));
  });
  for (const int threads : {1, 2, 3}) {
    with_threads(threads, [&] {
      const std::vector<at::Tensor> grouped = linear_t_group(x, weights);
      ASSERT_EQ(grouped.size(), 3U);
      for (std::size_t i = 0; i < weights.size(); ++i) {
        EXPECT_TRUE(at::equal(grouped[i], separate[i])) << i << ", " << threads << " threads";
        EXPECT_TRUE(at::allclose(grouped[i], at::linear(x, dense[i], biases[i]), 1e-5, 1e-4)) << i;
      }
    });
  }
}

TEST(PackedGemm, EveryCopyOfTheKernelsAgrees) {
  // The AVX-512 and AVX2 copies both chain FMAs in the same order: the same bits. The
  // baseline copy rounds each product: equal to rounding, and (proof that it ran) not
  // everywhere equal bit for bit. Each copy reports itself while forced, and the default
  // comes back after.
  at::manual_seed(5);
  const at::Tensor x = at::randn({37, 576}), weight = at::randn({200, 576}), bias = at::randn({200});
  const Matrix w = make_matrix(weight);
  const CpuKernels before = packed_matmul_kernels();
  EXPECT_EQ(before, active_cpu_kernels());
  at::Tensor out[3];  // by CpuKernels
  for (const CpuKernels copy : {CpuKernels::kAvx512, CpuKernels::kAvx2, CpuKernels::kGeneric}) {
    with_cpu_kernels(copy, [&] {
      EXPECT_EQ(packed_matmul_kernels(), copy);
      out[static_cast<int>(copy)] = linear_t(x, w, bias);
    });
    EXPECT_EQ(packed_matmul_kernels(), before);
  }
  const at::Tensor& avx512 = out[static_cast<int>(CpuKernels::kAvx512)];
  const at::Tensor& avx2 = out[static_cast<int>(CpuKernels::kAvx2)];
  const at::Tensor& generic = out[static_cast<int>(CpuKernels::kGeneric)];
  ASSERT_TRUE(generic.defined()) << "every CPU runs the generic copy";
  EXPECT_TRUE(at::allclose(generic, at::linear(x, weight, bias), 1e-5, 1e-4));
  if (avx512.defined() && avx2.defined()) {
    EXPECT_TRUE(at::equal(avx512, avx2));
  }
  if (cpu_runs(CpuKernels::kAvx512)) {
    EXPECT_TRUE(avx2.defined()) << "an AVX-512 CPU without AVX2 and FMA";
  }
  if (avx2.defined()) {
    EXPECT_TRUE(at::allclose(generic, avx2, 1e-5, 1e-4));
#if !defined(__FMA__)  // a build for an FMA target contracts the baseline copy too
    EXPECT_FALSE(at::equal(generic, avx2)) << "the generic copy did not run";
#endif
  }
}

// Each copy of the kernels against ATen, whichever CPU the tests run on.
class PackedGemmCopy : public kvsafe::testing::CpuCopyTest {};

TEST_P(PackedGemmCopy, EveryRowCountAndTheModelFamiliesShapesMatchAten) {
  EXPECT_EQ(packed_matmul_kernels(), copy());
  at::manual_seed(9);
  // Inner and outer sizes of the model families (SmolLM2 576/1536, Qwen2.5-0.5B 896/4864,
  // Gemma-2 2304, Phi-3 3072, Llama/Mistral 4096) with outputs cut to a few panels and a tail,
  // and odd inner sizes; every row count 1..64 on one of them, then 1024 rows.
  struct Case {
    std::int64_t in, out;
  };
  for (const Case c :
       {Case{576, 1536}, Case{896, 77}, Case{2304, 70}, Case{3072, 40}, Case{4096, 33}, Case{67, 45}, Case{1, 32}}) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.in));
    const at::Tensor weight = at::randn({c.out, c.in}) * scale, bias = at::randn({c.out});
    const Matrix w = make_matrix(weight);
    for (const std::int64_t rows : {1, 5, 32}) {
      const at::Tensor x = at::randn({rows, c.in});
      EXPECT_TRUE(at::allclose(linear_t(x, w, bias), at::linear(x, weight, bias), 1e-4, 1e-4))
          << rows << "x" << c.in << "x" << c.out;
    }
  }
  const at::Tensor weight = at::randn({70, 131}) / std::sqrt(131.0), bias = at::randn({70});
  const Matrix w = make_matrix(weight);
  const at::Tensor x = at::randn({1024, 131});
  const at::Tensor all = linear_t(x, w, bias);
  EXPECT_TRUE(at::allclose(all, at::linear(x, weight, bias), 1e-4, 1e-4)) << "1024 rows";
  for (std::int64_t rows = 1; rows <= 64; ++rows) {
    const at::Tensor part = linear_t(x.narrow(0, 100, rows), w, bias);
    EXPECT_TRUE(at::equal(part, all.narrow(0, 100, rows))) << rows << " rows";
  }
}

KVSAFE_INSTANTIATE_CPU_COPIES(PackedGemmCopy);

TEST(PackedGemm, InsideAParallelRegionItRunsOnTheCallingThread) {
  at::manual_seed(7);
  const at::Tensor x = at::randn({4, 32, 96}), weight = at::randn({200, 96});
  const Matrix w = make_matrix(weight);
  std::vector<at::Tensor> outside, inside(4);
  for (std::int64_t i = 0; i < 4; ++i) outside.push_back(linear_t(x[i], w));
  at::parallel_for(0, 4, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) inside[static_cast<std::size_t>(i)] = linear_t(x[i], w);
  });
  for (std::size_t i = 0; i < 4; ++i) EXPECT_TRUE(at::equal(inside[i], outside[i])) << i;
}

TEST(PackedGemm, AnEmptyInnerDimensionGivesTheBias) {
  const Matrix w = make_matrix(at::empty({5, 0}));
  const at::Tensor bias = at::arange(5, at::kFloat);
  EXPECT_TRUE(at::equal(linear_t(at::empty({3, 0}), w, bias), bias.expand({3, 5})));
  EXPECT_TRUE(at::equal(linear_t(at::empty({3, 0}), w), at::zeros({3, 5})));
}

TEST(PackedGemm, TiedEmbeddingRowsComeFromThePackedHead) {
  at::manual_seed(6);
  ModelWeights weights;
  const at::Tensor table = at::randn({70, 24});  // [vocab, hidden]
  weights.lm_head = make_matrix(table);
  const at::Tensor tokens = at::tensor({0, 69, 33, 32, 31, 5}, at::kLong).view({2, 3});
  EXPECT_TRUE(at::equal(embed_tokens(weights, tokens), at::embedding(table, tokens)));
  EXPECT_THROW(embed_tokens(weights, at::tensor({70}, at::kLong).view({1, 1})), InputError);
  EXPECT_THROW(embed_tokens(weights, at::tensor({-1}, at::kLong).view({1, 1})), InputError);
}

}  // namespace
}  // namespace kvsafe::engine
