#pragma once
// Spearman's rank correlation with a permutation p-value: how well one ordering of a grid's
// quantizers (the refusal direction's erosion) predicts another (their conditional flips).
// The n is small (a grid's quantizers: a handful), so the p-value is exact where it can be.
// Target kvsafe_eval_stats (torch-free).

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace kvsafe::eval {

// Ranks 1..n, ties sharing the mean of the ranks they span (the "average" method of
// scipy.stats.rankdata).
std::vector<double> average_ranks(std::span<const double> values);

struct RankCorrelation {
  std::int64_t n = 0;
  double rho = 0;  // Pearson's r of the average ranks, in [-1, 1]
  // Two-sided: the share of the orderings of y whose |rho| is at least the observed one
  // (1e-12 slack for rounding). Exact over all n! orderings for n <= kExactPermutationLimit;
  // beyond, kSampledPermutations seeded draws (SplitMix64, seed 0) plus the observed ordering.
  double p_value = 1;
  bool exact = true;
};

inline constexpr std::int64_t kExactPermutationLimit = 8;
inline constexpr std::int64_t kSampledPermutations = 20000;

// nullopt when it is undefined: fewer than 3 pairs, or x or y constant (a rank variance of 0).
// Throws InputError when the spans differ in length or hold a NaN.
std::optional<RankCorrelation> spearman(std::span<const double> x, std::span<const double> y);

}  // namespace kvsafe::eval
