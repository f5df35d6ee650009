// engine/cpu_gemm.h: the BLAS called directly (attention's prefill products), and OpenBLAS
// kept off its own thread pool. The linear layers' kernels: packed_gemm_test.cpp.

#include <ATen/ATen.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>

#include "common/error.h"
#include "engine/cpu_gemm.h"

namespace kvsafe::engine {
namespace {

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
