// engine/cpu_gemm.h and linear_t (engine/transformer_blocks.h): the BLAS called directly and
// split over ATen's pool. The products must equal ATen's (at::mm, at::addmm, at::linear) and
// have the same bits for any thread count and any grouping of weights, because the engine's
// outputs must not depend on how many cores a worker has (the MPI tests compare 2-thread and
// 1-thread workers row by row).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/error.h"
#include "engine/cpu_gemm.h"
#include "engine/transformer_blocks.h"

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

TEST(CpuGemm, RowMajorSgemmMatchesAten) {
  at::manual_seed(1);
  // a [5, 7] inside a wider buffer (lda 9), b [7, 6] and its transpose [6, 7] (ldb 11).
  const at::Tensor a_buffer = at::randn({5, 9}), b_buffer = at::randn({7, 11}), bt_buffer = at::randn({6, 11});
  const at::Tensor a = a_buffer.narrow(1, 0, 7), b = b_buffer.narrow(1, 0, 6), bt = bt_buffer.narrow(1, 0, 7);
  at::Tensor c = at::randn({5, 6});
  const at::Tensor c_before = c.clone();
  sgemm_row_major({.m = 5, .n = 6, .k = 7, .alpha = 0.5f, .beta = 2.0f}, a.data_ptr<float>(), 9, b.data_ptr<float>(),
                  11, c.data_ptr<float>(), 6);
  EXPECT_TRUE(at::allclose(c, at::addmm(c_before, a, b, /*beta=*/2.0, /*alpha=*/0.5), 1e-5, 1e-4));
  at::Tensor d = at::full({5, 6}, std::numeric_limits<float>::quiet_NaN());  // beta = 0 ignores it
  sgemm_row_major({.m = 5, .n = 6, .k = 7, .transpose_b = true}, a.data_ptr<float>(), 9, bt.data_ptr<float>(), 11,
                  d.data_ptr<float>(), 6);
  EXPECT_TRUE(at::equal(d, at::mm(a, bt.t())));
  EXPECT_THROW(sgemm_row_major({.m = 1, .n = 1, .k = std::int64_t{1} << 31}, a.data_ptr<float>(), 9,
                               b.data_ptr<float>(), 11, d.data_ptr<float>(), 6),
               InputError);
}

TEST(CpuGemm, LinearHasTheSameBitsAtEveryThreadCount) {
  at::manual_seed(2);
  struct Shape {
    std::int64_t rows, in, out;
  };
  // Decode rows (1, 4, 32), a prefill block, odd widths, SmolLM2's 576 -> 1536, and a tiny
  // product that stays on one thread.
  for (const Shape s : {Shape{1, 576, 1536}, Shape{4, 64, 200}, Shape{32, 576, 192}, Shape{129, 96, 1000},
                        Shape{3, 8, 17}, Shape{7, 300, 33}}) {
    const at::Tensor x = at::randn({s.rows, s.in}), weight = at::randn({s.out, s.in}), bias = at::randn({s.out});
    const at::Tensor weight_t = weight.t().contiguous();
    // NOTE: at::linear hands the BLAS the [out, in] matrix with a transpose flag. OpenBLAS's
    // Prescott kernels give the same bits for both layouts; its SkylakeX kernels
    // (OPENBLAS_CORETYPE=SkylakeX) run other small-matrix code per layout, so ATen is the
    // oracle to float rounding, and the bits are compared across thread counts.
    const at::Tensor want = at::linear(x, weight), want_bias = at::linear(x, weight, bias);
    at::Tensor one_thread, one_thread_bias;
    with_threads(1, [&] {
      one_thread = linear_t(x, weight_t);
      one_thread_bias = linear_t(x, weight_t, bias);
    });
    EXPECT_TRUE(at::allclose(one_thread, want, 1e-5, 1e-4)) << s.rows << "x" << s.in << "x" << s.out;
    EXPECT_TRUE(at::allclose(one_thread_bias, want_bias, 1e-5, 1e-4)) << s.rows << "x" << s.in << "x" << s.out;
    for (const int threads : {2, 3}) {
      with_threads(threads, [&] {
        EXPECT_TRUE(at::equal(linear_t(x, weight_t), one_thread))
            << s.rows << "x" << s.in << "x" << s.out << ", " << threads << " threads";
        EXPECT_TRUE(at::equal(linear_t(x, weight_t, bias), one_thread_bias))
            << s.rows << "x" << s.in << "x" << s.out << " with bias, " << threads << " threads";
      });
    }
    // [batch, tokens, in] keeps its leading dims.
    const at::Tensor x3 = x.view({1, s.rows, s.in});
    EXPECT_EQ(linear_t(x3, weight_t).sizes(), (std::vector<std::int64_t>{1, s.rows, s.out}));
  }
}

TEST(CpuGemm, GroupedProductsEqualSeparateOnes) {
  at::manual_seed(3);
  // q, k, v of a GQA layer with a bias (Qwen2); the split points of the columns land inside
  // different weights at 2 and 3 threads.
  const at::Tensor x = at::randn({2, 5, 96});
  const std::vector<LinearWeights> weights{{.weight_t = at::randn({96, 96}), .bias = at::randn({96})},
                                           {.weight_t = at::randn({96, 32}), .bias = at::randn({32})},
                                           {.weight_t = at::randn({96, 32}), .bias = {}}};
  std::vector<at::Tensor> separate;
  with_threads(1, [&] {
    for (const LinearWeights& w : weights) separate.push_back(linear_t(x, w.weight_t, w.bias));
  });
  for (const int threads : {1, 2, 3}) {
    with_threads(threads, [&] {
      const std::vector<at::Tensor> grouped = linear_t_group(x, weights);
      ASSERT_EQ(grouped.size(), 3U);
      for (std::size_t i = 0; i < weights.size(); ++i) {
        EXPECT_TRUE(at::equal(grouped[i], separate[i])) << i << ", " << threads << " threads";
        EXPECT_TRUE(at::allclose(grouped[i], at::linear(x, weights[i].weight_t.t(), weights[i].bias), 1e-5, 1e-4));
      }
    });
  }
}

TEST(CpuGemm, OpenBlasRunsSingleThreadedAfterTheEngineAsksForIt) {
  void* get = dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
  if (get == nullptr) GTEST_SKIP() << "the BLAS is not OpenBLAS: " << blas_description();
  int (*get_threads)() = nullptr;
  std::memcpy(&get_threads, &get, sizeof(get));
  use_single_threaded_blas();
  EXPECT_EQ(get_threads(), 1);
  EXPECT_NE(std::string(blas_description()).find("OpenBLAS"), std::string::npos) << blas_description();
}

}  // namespace
}  // namespace kvsafe::engine
