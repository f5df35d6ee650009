// KL divergence and argmax over logits (eval/logit_divergence.h) on cases worked out by hand.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
#include "eval/logit_divergence.h"

namespace kvsafe::eval {
namespace {

double kl(const std::vector<float>& p, const std::vector<float>& q) {
  return kl_divergence_logits(p.data(), q.data(), static_cast<std::int64_t>(p.size()));
}

TEST(LogitDivergence, HandComputedKl) {
  // P = (1/2, 1/2), Q = softmax(0, ln 3) = (1/4, 3/4):
  // KL = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3).
  EXPECT_NEAR(kl({0, 0}, {0, static_cast<float>(std::log(3.0))}), 0.5 * std::log(4.0 / 3.0), 1e-7);
  // Not symmetric: KL(Q || P) = 1/4 ln(1/2) + 3/4 ln(3/2).
  EXPECT_NEAR(kl({0, static_cast<float>(std::log(3.0))}, {0, 0}), 0.25 * std::log(0.5) + 0.75 * std::log(1.5), 1e-7);
}

TEST(LogitDivergence, IdenticalAndShiftedDistributionsGiveZero) {
  const std::vector<float> p{1.5f, -2.0f, 0.25f, 3.0f};
  EXPECT_EQ(kl(p, p), 0.0);
  std::vector<float> shifted = p;
  for (float& x : shifted) x += 100.0f;  // softmax is shift-invariant
  EXPECT_NEAR(kl(p, shifted), 0.0, 1e-12);
}

TEST(LogitDivergence, LargeLogitsDoNotOverflow) {
  // exp(1e4) overflows a double; the max-subtracted log-softmax does not.
  const double value = kl({1e4f, 1e4f}, {1e4f, 1e4f + static_cast<float>(std::log(3.0))});
  EXPECT_TRUE(std::isfinite(value));
  EXPECT_NEAR(value, 0.5 * std::log(4.0 / 3.0), 1e-3);  // float spacing at 1e4 is ~1e-3
}

TEST(LogitDivergence, ZeroProbabilities) {
  const float inf = std::numeric_limits<float>::infinity();
  // P gives token 1 no mass: its term is 0 whatever Q says. KL = 1 * ln(1 / (1/2)) = ln 2.
  EXPECT_NEAR(kl({0, -inf}, {0, 0}), std::log(2.0), 1e-12);
  // Q gives no mass to a token P has: infinite.
  EXPECT_EQ(kl({0, 0}, {0, -inf}), inf);
}

TEST(LogitDivergence, RefusesBadInput) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_THROW(kl({0, nan}, {0, 0}), InputError);
  EXPECT_THROW(kl({0, 0}, {inf, 0}), InputError);
  const float x = 0;
  EXPECT_THROW(kl_divergence_logits(&x, &x, 0), InputError);
  EXPECT_THROW(kl_divergence_logits(nullptr, &x, 1), InputError);
  EXPECT_THROW(argmax_logits(nullptr, 1), InputError);
}

TEST(LogitDivergence, ArgmaxTakesTheFirstMaximum) {
  const std::vector<float> logits{1, 3, -2, 3};
  EXPECT_EQ(argmax_logits(logits.data(), 4), 1);
  EXPECT_EQ(argmax_logits(logits.data(), 1), 0);
}

}  // namespace
}  // namespace kvsafe::eval
