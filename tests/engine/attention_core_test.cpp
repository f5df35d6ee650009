// The CPU attention kernel (engine/attention_core_cpu.cpp) against the ATen reference it
// replaces for float32 CPU calls: the vector decode loops (head_dim a multiple of 16 up to
// 256, scalar loops otherwise) and the BLAS path of longer calls (query rows in blocks), with
// GQA, strided cache views (a narrow() of a larger buffer, as ExactKvStore hands out), padding
// masks, a row that sees every key, one that sees a single key, and soft-capping. Both compute
// the same formula; only the summation order of the dot products differs, hence a float
// tolerance. Results must not depend on the thread count.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>

#include "common/cpu_kernels.h"
#include "engine/transformer_blocks.h"
#include "tests/testing/cpu_copies.h"

namespace kvsafe::engine {
namespace {

struct Case {
  std::int64_t batch, heads, kv_heads, n, total, dim;
  double softcap;
};

void check(const Case& c) {
  at::manual_seed(7);
  const std::int64_t capacity = c.total + 17;
  // q as attention_block makes it: [batch, n, heads, dim] viewed as [batch, heads, n, dim].
  const at::Tensor q = at::randn({c.batch, c.n, c.heads, c.dim}).transpose(1, 2);
  const at::Tensor k_buffer = at::randn({c.batch, c.kv_heads, capacity, c.dim});
  const at::Tensor v_buffer = at::randn({c.batch, c.kv_heads, capacity, c.dim});
  const at::Tensor keys = k_buffer.narrow(2, 0, c.total), values = v_buffer.narrow(2, 0, c.total);
  at::Tensor allowed = at::rand({c.batch, 1, c.n, c.total}) > 0.3;
  allowed.select(0, 0).select(0, 0).select(0, 0).fill_(true);  // one row sees every key
  allowed.select(0, c.batch - 1).select(0, 0).select(0, c.n - 1).fill_(false);
  allowed.select(0, c.batch - 1).select(0, 0).select(0, c.n - 1).select(0, 0).fill_(true);  // one key only
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.dim));
  const at::Tensor want = attention_core_reference(q, keys, values, allowed, scale, c.softcap);
  const at::Tensor got = attention_core_cpu(q, keys, values, allowed, scale, c.softcap);
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5)
      << "batch " << c.batch << " heads " << c.heads << "/" << c.kv_heads << " n " << c.n << " total " << c.total;
  // attention_core dispatches float32 CPU calls to the kernel.
  EXPECT_TRUE(at::equal(attention_core(q, keys, values, allowed, scale, c.softcap), got));
  const int threads = at::get_num_threads();
  at::set_num_threads(threads == 1 ? 2 : 1);
  EXPECT_TRUE(at::equal(attention_core_cpu(q, keys, values, allowed, scale, c.softcap), got))
      << "the thread count changed the bits";
  at::set_num_threads(threads);
}

TEST(AttentionCore, CpuKernelMatchesReference) {
  check({.batch = 1, .heads = 9, .kv_heads = 3, .n = 1, .total = 130, .dim = 64, .softcap = 0});
  check({.batch = 4, .heads = 8, .kv_heads = 4, .n = 1, .total = 9, .dim = 8, .softcap = 0});
  check({.batch = 3, .heads = 4, .kv_heads = 4, .n = 3, .total = 40, .dim = 20, .softcap = 0});  // tail dims
  check({.batch = 2, .heads = 6, .kv_heads = 2, .n = 2, .total = 33, .dim = 16, .softcap = 50.0});
  check({.batch = 2, .heads = 4, .kv_heads = 1, .n = 7, .total = 12, .dim = 32, .softcap = 0});  // prefill-sized
}

// Each copy of the decode loops (AVX-512, AVX2, generic) against the reference, whichever CPU
// the tests run on.
class AttentionCoreCopy : public kvsafe::testing::CpuCopyTest {};

TEST_P(AttentionCoreCopy, VectorDecodeLoopsCoverEveryHeadDim) {
  // 16 (one vector), SmolLM2's 64, Phi-3's 96, 128, Gemma-2's 256 with soft-capping; 4 query
  // tokens (the largest decode call) and a long cache.
  check({.batch = 2, .heads = 2, .kv_heads = 1, .n = 1, .total = 5, .dim = 16, .softcap = 0});
  check({.batch = 3, .heads = 9, .kv_heads = 3, .n = 4, .total = 300, .dim = 64, .softcap = 0});
  check({.batch = 2, .heads = 4, .kv_heads = 2, .n = 1, .total = 70, .dim = 96, .softcap = 0});
  check({.batch = 1, .heads = 8, .kv_heads = 8, .n = 2, .total = 41, .dim = 128, .softcap = 0});
  check({.batch = 2, .heads = 4, .kv_heads = 2, .n = 1, .total = 37, .dim = 256, .softcap = 30.0});
  // A NaN cap is no cap (softcap > 0 is false), and the mask still applies (it is applied in
  // the scores loop unless a cap is).
  check({.batch = 2, .heads = 6, .kv_heads = 2, .n = 2, .total = 45, .dim = 64, .softcap = std::nan("")});
}

KVSAFE_INSTANTIATE_CPU_COPIES(AttentionCoreCopy);

TEST(AttentionCore, TheCopiesOfTheDecodeLoopsAgree) {
  // One template body compiled per instruction set. The AVX-512 and AVX2 copies do the same
  // lane operations (FMAs included) and add lanes in one fixed tree: the same bits. The
  // generic copy has no FMA: equal to float rounding, and (proof that it ran) not everywhere
  // bit for bit.
  using kvsafe::testing::with_cpu_kernels;
  at::manual_seed(5);
  for (const std::int64_t dim : {16, 64, 96, 256}) {
    const at::Tensor q = at::randn({3, 6, 2, dim});
    const at::Tensor k = at::randn({3, 2, 75, dim}), v = at::randn({3, 2, 75, dim});
    const at::Tensor allowed = at::rand({3, 1, 2, 75}) > 0.2;
    const at::Tensor reference = attention_core_reference(q, k, v, allowed, 0.125, 0);
    at::Tensor by_copy[3];
    for (const CpuKernels copy : {CpuKernels::kAvx512, CpuKernels::kAvx2, CpuKernels::kGeneric}) {
      with_cpu_kernels(copy, [&] {
        const at::Tensor out = attention_core_cpu(q, k, v, allowed, 0.125, 0);
        EXPECT_LT((out - reference).abs().max().item<double>(), 1e-5) << to_string(copy) << " " << dim;
        by_copy[static_cast<int>(copy)] = out;
      });
    }
    const at::Tensor& avx512 = by_copy[static_cast<int>(CpuKernels::kAvx512)];
    const at::Tensor& avx2 = by_copy[static_cast<int>(CpuKernels::kAvx2)];
    const at::Tensor& generic = by_copy[static_cast<int>(CpuKernels::kGeneric)];
    if (avx512.defined() && avx2.defined()) {
      EXPECT_TRUE(at::equal(avx512, avx2)) << "head_dim " << dim;
    }
#if !defined(__FMA__)  // a build for an FMA target contracts the generic copy too
    if (avx2.defined()) {
      EXPECT_FALSE(at::equal(avx2, generic)) << "the generic copy did not run (head_dim " << dim << ")";
    }
#endif
  }
}

TEST(AttentionCore, BlasPathSplitsLongCallsIntoRowBlocks) {
  // A prefill whose GQA rows (3 x 100) span three blocks of 128, and a long single-head one.
  check({.batch = 2, .heads = 6, .kv_heads = 2, .n = 100, .total = 100, .dim = 64, .softcap = 0});
  check({.batch = 1, .heads = 1, .kv_heads = 1, .n = 260, .total = 260, .dim = 8, .softcap = 20.0});
}

TEST(AttentionCore, ContiguousAndStridedCachesGiveTheSameBits) {
  at::manual_seed(3);
  const at::Tensor q = at::randn({2, 6, 1, 32});
  const at::Tensor k = at::randn({2, 3, 50, 32}), v = at::randn({2, 3, 50, 32});
  const at::Tensor allowed = at::rand({2, 1, 1, 21}) > 0.2;
  const at::Tensor a = attention_core_cpu(q, k.narrow(2, 0, 21), v.narrow(2, 0, 21), allowed, 0.2, 0);
  const at::Tensor b =
      attention_core_cpu(q, k.narrow(2, 0, 21).contiguous(), v.narrow(2, 0, 21).contiguous(), allowed, 0.2, 0);
  EXPECT_TRUE(at::equal(a, b));
}

}  // namespace
}  // namespace kvsafe::engine
