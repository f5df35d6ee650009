// Spearman's rho and its permutation p-value (eval/rank_correlation.h) against hand-worked
// values, and the exact p-value against a brute force over every index permutation.

#include "eval/rank_correlation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "common/error.h"

namespace kvsafe::eval {
namespace {

TEST(AverageRanks, TiesShareTheMeanOfTheirRanks) {
  const std::vector<double> values{5, 6, 7, 8, 7};
  EXPECT_EQ(average_ranks(values), (std::vector<double>{1, 2, 3.5, 5, 3.5}));
  const std::vector<double> all_equal{0.2, 0.2, 0.2};
  EXPECT_EQ(average_ranks(all_equal), (std::vector<double>{2, 2, 2}));
}

TEST(Spearman, HandWorkedValueWithATie) {
  // ranks x = 1..5, ranks y = 1, 2, 3.5, 5, 3.5: sxy = 8, sxx = 10, syy = 9.5.
  const std::vector<double> x{1, 2, 3, 4, 5}, y{5, 6, 7, 8, 7};
  const auto r = spearman(x, y);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->n, 5);
  EXPECT_NEAR(r->rho, 8.0 / std::sqrt(95.0), 1e-15);
  EXPECT_TRUE(r->exact);

  // Brute force: every one of the 5! index orderings of y (ties included as distinct items).
  std::vector<std::size_t> order(5);
  std::iota(order.begin(), order.end(), 0);
  int as_extreme = 0, total = 0;
  do {
    std::vector<double> permuted;
    for (std::size_t i : order) permuted.push_back(y[i]);
    const auto p = spearman(x, permuted);
    ++total;
    if (p && std::fabs(p->rho) >= std::fabs(r->rho) - 1e-12) ++as_extreme;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(total, 120);
  EXPECT_DOUBLE_EQ(r->p_value, static_cast<double>(as_extreme) / total);
}

TEST(Spearman, PerfectOrderingsHaveTheSmallestExactPValue) {
  const std::vector<double> x{0.0, 0.1, 0.3, 0.9}, up{0.01, 0.2, 0.5, 0.7}, down{0.7, 0.5, 0.2, 0.01};
  const auto increasing = spearman(x, up);
  ASSERT_TRUE(increasing.has_value());
  EXPECT_DOUBLE_EQ(increasing->rho, 1.0);
  EXPECT_DOUBLE_EQ(increasing->p_value, 2.0 / 24.0);  // the identity and the reversal of 4! orderings
  const auto decreasing = spearman(x, down);
  ASSERT_TRUE(decreasing.has_value());
  EXPECT_DOUBLE_EQ(decreasing->rho, -1.0);
  EXPECT_DOUBLE_EQ(decreasing->p_value, 2.0 / 24.0);
}

TEST(Spearman, BeyondEightPairsThePValueIsSampled) {
  std::vector<double> x(10), y(10);
  for (int i = 0; i < 10; ++i) {
    x[static_cast<std::size_t>(i)] = i;
    y[static_cast<std::size_t>(i)] = i * i;
  }
  const auto r = spearman(x, y);
  ASSERT_TRUE(r.has_value());
  EXPECT_DOUBLE_EQ(r->rho, 1.0);
  EXPECT_FALSE(r->exact);
  // P(|rho| = 1) under a random ordering is 2 / 10! (5.5e-7): the observed ordering alone
  // counts in all likelihood, so p = 1 / (kSampledPermutations + 1).
  EXPECT_LT(r->p_value, 3.0 / static_cast<double>(kSampledPermutations));
  EXPECT_GT(r->p_value, 0.0);
}

TEST(Spearman, UndefinedCases) {
  const std::vector<double> two{1, 2}, constant{0.5, 0.5, 0.5}, three{1, 2, 3};
  EXPECT_FALSE(spearman(two, two).has_value());         // fewer than 3 pairs
  EXPECT_FALSE(spearman(three, constant).has_value());  // y has no rank variance
  EXPECT_FALSE(spearman(constant, three).has_value());  // nor x
  EXPECT_THROW(spearman(three, two), InputError);       // lengths differ
  const std::vector<double> with_nan{1, NAN, 3};
  EXPECT_THROW(spearman(three, with_nan), InputError);
}

}  // namespace
}  // namespace kvsafe::eval
