// The sampling algorithm is part of what a seeded cell means: pin its outputs.

#include <gtest/gtest.h>

#include <set>

#include "eval/prompt_sampling.h"

namespace kvsafe::eval {
namespace {

TEST(PromptSampling, SplitMix64MatchesItsReferenceOutputs) {
  // Reference values of SplitMix64 seeded with 0 (Vigna's splitmix64.c; the same numbers
  // appear in many ports): 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F.
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(rng.next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(rng.next(), 0x06C45D188009454FULL);
}

TEST(PromptSampling, DistinctSortedAndDeterministic) {
  const std::vector<std::size_t> a = sample_indices(520, 100, 42);
  ASSERT_EQ(a.size(), 100u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<std::size_t>(a.begin(), a.end()).size(), 100u);
  EXPECT_LT(a.back(), 520u);
  EXPECT_EQ(a, sample_indices(520, 100, 42));
  EXPECT_NE(a, sample_indices(520, 100, 43));
}

TEST(PromptSampling, PinnedDraw) {
  // NOTE: if this changes, every seeded benchmark sample changes: do not "fix" the values,
  // fix the code. The generator's first outputs for seed 1234567 are SplitMix64's published
  // test values; the draws come from tests/oracles/prompt_sampling_oracle.py, the algorithm of
  // prompt_sampling.h written out in Python.
  SplitMix64 rng(1234567);
  EXPECT_EQ(rng.next(), 6457827717110365317ULL);
  EXPECT_EQ(rng.next(), 3203168211198807973ULL);
  EXPECT_EQ(rng.next(), 9817491932198370423ULL);
  EXPECT_EQ(sample_indices(10, 1, 7), (std::vector<std::size_t>{7}));
  EXPECT_EQ(sample_indices(520, 20, 42), (std::vector<std::size_t>{27,  79,  91,  114, 134, 164, 226, 242, 255, 288,
                                                                   310, 327, 360, 364, 373, 387, 444, 451, 453, 477}));
  EXPECT_EQ(sample_indices(100, 10, 0), (std::vector<std::size_t>{0, 1, 21, 35, 38, 39, 55, 72, 79, 95}));
  EXPECT_EQ(
      sample_indices(313, 50, 2606),
      (std::vector<std::size_t>{0,   4,   6,   7,   14,  15,  28,  34,  36,  38,  46,  47,  52,  53,  55,  69,  76,
                                78,  79,  82,  85,  87,  102, 119, 124, 129, 130, 133, 136, 163, 166, 178, 189, 198,
                                207, 226, 229, 232, 239, 245, 249, 253, 265, 268, 272, 279, 291, 294, 307, 310}));
}

TEST(PromptSampling, AllWhenAskingForMore) {
  EXPECT_EQ(sample_indices(3, 5, 1), (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_TRUE(sample_indices(0, 5, 1).empty());
}

}  // namespace
}  // namespace kvsafe::eval
