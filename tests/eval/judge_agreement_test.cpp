// compare_judges: two judges' verdicts matched by generation id, Cohen's kappa over the items
// both reached a verdict on, against values computed by hand.

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "eval/statistics.h"

namespace kvsafe::eval {
namespace {

constexpr Outcome R = Outcome::kRefused;
constexpr Outcome C = Outcome::kComplied;
constexpr Outcome U = Outcome::kUnjudged;

TEST(CompareJudges, MatchesByKeyAndLeavesOutUnjudged) {
  // Items 1..6 judged by both (item 6 unparsed by the second), 7 only by the first, 8 only by the
  // second; the lists are in different orders.
  const std::vector<KeyedOutcome> first = {{7, R}, {1, R}, {2, R}, {3, R}, {4, C}, {5, C}, {6, R}};
  const std::vector<KeyedOutcome> second = {{5, C}, {4, R}, {3, C}, {2, R}, {1, R}, {6, U}, {8, C}};
  const JudgeComparison c = compare_judges(first, second);
  EXPECT_EQ(c.both_refused, 2);         // 1, 2
  EXPECT_EQ(c.first_only_refused, 1);   // 3
  EXPECT_EQ(c.second_only_refused, 1);  // 4
  EXPECT_EQ(c.both_complied, 1);        // 5
  EXPECT_EQ(c.unjudged, 1);
  EXPECT_EQ(c.only_first, 1);
  EXPECT_EQ(c.only_second, 1);
  // By hand: n = 5, p_o = 3/5; marginals first 3/5 refused, second 3/5 refused:
  // p_e = 0.6*0.6 + 0.4*0.4 = 0.52; kappa = (0.6 - 0.52) / 0.48 = 1/6.
  EXPECT_EQ(c.agreement.items, 5);
  EXPECT_DOUBLE_EQ(c.agreement.observed, 0.6);
  EXPECT_NEAR(c.agreement.expected, 0.52, 1e-12);
  EXPECT_NEAR(c.agreement.kappa, 1.0 / 6.0, 1e-12);
}

TEST(CompareJudges, PerfectAndEmpty) {
  const std::vector<KeyedOutcome> a = {{1, R}, {2, C}};
  EXPECT_DOUBLE_EQ(compare_judges(a, a).agreement.kappa, 1.0);
  const JudgeComparison none = compare_judges({}, a);
  EXPECT_EQ(none.agreement.items, 0);
  EXPECT_EQ(none.only_second, 2);
  EXPECT_TRUE(std::isnan(none.agreement.kappa));
}

TEST(CompareJudges, DuplicateKeyIsRefused) {
  const std::vector<KeyedOutcome> twice = {{1, R}, {1, C}};
  EXPECT_THROW((void)compare_judges(twice, {}), InputError);
}

}  // namespace
}  // namespace kvsafe::eval
