// greedy_tokens (engine/greedy.h): the generator's greedy pick must be at::argmax exactly, ties
// and NaN included, or greedy answers would change with the code path.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "engine/greedy.h"
#include "engine/model.h"
#include "tests/testing/cpu_copies.h"

namespace kvsafe::engine {
namespace {

void expect_argmax(const at::Tensor& logits, const char* what) {
  const at::Tensor got = greedy_tokens(logits);
  const at::Tensor want = logits.argmax(-1);
  EXPECT_EQ(got.sizes(), want.sizes()) << what;
  EXPECT_EQ(got.scalar_type(), at::kLong) << what;
  EXPECT_TRUE(at::equal(got, want)) << what << "\n" << got << "\n" << want;
}

// Each copy of the vector passes (AVX-512, AVX2, generic), whichever CPU the tests run on.
class GreedyTokensCopy : public kvsafe::testing::CpuCopyTest {};

TEST_P(GreedyTokensCopy, EqualsAtenArgmax) {
  at::manual_seed(21);
  // SmolLM2's vocabulary at batch 32, and widths that are not whole vectors.
  expect_argmax(at::randn({32, 49152}), "32 x 49152");
  for (const std::int64_t n : {1, 5, 16, 37, 1000}) expect_argmax(at::randn({3, n}), "3 x n");
  expect_argmax(at::randn({2, 3, 37}), "3-d");
  expect_argmax(at::randn({37, 4}).t(), "strided");
}

TEST_P(GreedyTokensCopy, TiesGoToTheFirstIndexAndNanWins) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  at::Tensor x = at::randn({6, 100});
  // Row 0: the maximum three times (first in the vector part, two later); row 1: +inf twice;
  // row 2: all -inf; row 3: two NaN after the maximum; row 4: a NaN in the scalar tail;
  // row 5: a NaN and +inf.
  for (const std::int64_t i : {20, 21, 99}) x[0][i] = 7.0f;
  x[1][40] = inf;
  x[1][3] = inf;
  x[2].fill_(-inf);
  x[3][10] = 9.0f;
  x[3][50] = nan;
  x[3][70] = nan;
  x[4][98] = nan;
  x[5][60] = inf;
  x[5][61] = nan;
  expect_argmax(x, "ties, inf, nan");
  const at::Tensor got = greedy_tokens(x);
  EXPECT_EQ(got[0].item<std::int64_t>(), 20);
  EXPECT_EQ(got[2].item<std::int64_t>(), 0);
  EXPECT_EQ(got[3].item<std::int64_t>(), 50);
}

KVSAFE_INSTANTIATE_CPU_COPIES(GreedyTokensCopy);

TEST(GreedyTokens, OtherDtypesGoToAten) {
  const at::Tensor x = at::randn({4, 33}).to(at::kDouble);
  EXPECT_TRUE(at::equal(greedy_tokens(x), x.argmax(-1)));
}

}  // namespace
}  // namespace kvsafe::engine
