// The refusal direction's erosion (eval/refusal_direction.h) on hand-worked vectors.

#include "eval/refusal_direction.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"

namespace kvsafe::eval {
namespace {

TEST(LayerErosion, HandWorkedTwoDimensionalCase) {
  // r = (2, 0), |r| = 2, r^ = (1, 0). Quantized: harmful (1, 5), harmless (0, 1).
  // erosion = (2 - 1) / 2 = 0.5; projections 1 and 0; r_q = (1, 4): cos = 2 / (2 sqrt 17).
  const std::vector<double> harmful{2, 0}, harmless{0, 0}, harmful_q{1, 5}, harmless_q{0, 1};
  const auto e = layer_erosion(harmful, harmless, harmful_q, harmless_q);
  ASSERT_TRUE(e.has_value());
  EXPECT_DOUBLE_EQ(e->direction_norm, 2.0);
  EXPECT_DOUBLE_EQ(e->erosion, 0.5);
  EXPECT_DOUBLE_EQ(e->harmful_projection, 1.0);
  EXPECT_DOUBLE_EQ(e->harmless_projection, 0.0);
  EXPECT_NEAR(e->cosine, 1.0 / std::sqrt(17.0), 1e-15);
}

TEST(LayerErosion, FullPrecisionAgainstItselfIsNoErosion) {
  const std::vector<double> harmful{1.5, -2, 3}, harmless{0.5, 1, -1};
  const auto e = layer_erosion(harmful, harmless, harmful, harmless);
  ASSERT_TRUE(e.has_value());
  EXPECT_DOUBLE_EQ(e->erosion, 0.0);
  EXPECT_NEAR(e->cosine, 1.0, 1e-15);
  // The classes' separation along r^ is |r|.
  EXPECT_NEAR(e->harmful_projection - e->harmless_projection, e->direction_norm, 1e-12);
}

TEST(LayerErosion, HarmfulPromptsMovedOntoTheHarmlessMeanIsFullErosion) {
  const std::vector<double> harmful{3, 1}, harmless{1, 2};
  const auto e = layer_erosion(harmful, harmless, harmless, harmless);
  ASSERT_TRUE(e.has_value());
  EXPECT_DOUBLE_EQ(e->erosion, 1.0);
  EXPECT_DOUBLE_EQ(e->cosine, 0.0);  // the quantized classes coincide: no direction left
  // Pushed beyond the full-precision harmful mean: negative erosion.
  const std::vector<double> further{5, 0};
  EXPECT_LT(layer_erosion(harmful, harmless, further, harmless)->erosion, 0.0);
}

TEST(LayerErosion, UndefinedAndInvalidInputs) {
  const std::vector<double> same{1, 2}, other{0, 1}, three{1, 2, 3};
  EXPECT_FALSE(layer_erosion(same, same, other, other).has_value());  // r = 0
  EXPECT_THROW(layer_erosion(same, other, three, other), InputError);
  const std::vector<double> empty;
  EXPECT_THROW(layer_erosion(empty, empty, empty, empty), InputError);
}

}  // namespace
}  // namespace kvsafe::eval
