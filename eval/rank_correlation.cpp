#include "eval/rank_correlation.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "eval/prompt_sampling.h"

namespace kvsafe::eval {
namespace {

// Pearson's r of two equally long vectors; nullopt when either has no variance.
std::optional<double> pearson(std::span<const double> x, std::span<const double> y) {
  const auto n = static_cast<double>(x.size());
  const double mean_x = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double mean_y = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mean_x) * (y[i] - mean_y);
    sxx += (x[i] - mean_x) * (x[i] - mean_x);
    syy += (y[i] - mean_y) * (y[i] - mean_y);
  }
  if (sxx <= 0 || syy <= 0) return std::nullopt;
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

}  // namespace

std::vector<double> average_ranks(std::span<const double> values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    const double rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;  // mean of ranks i+1..j+1
    for (std::size_t k = i; k <= j; ++k) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

std::optional<RankCorrelation> spearman(std::span<const double> x, std::span<const double> y) {
  KVSAFE_CHECK(x.size() == y.size(), "spearman: ", x.size(), " values against ", y.size());
  const auto is_nan = [](double v) { return std::isnan(v); };
  KVSAFE_CHECK(std::none_of(x.begin(), x.end(), is_nan) && std::none_of(y.begin(), y.end(), is_nan),
               "spearman: a value is NaN");
  if (x.size() < 3) return std::nullopt;
  const std::vector<double> rx = average_ranks(x);
  std::vector<double> ry = average_ranks(y);
  const std::optional<double> rho = pearson(rx, ry);
  if (!rho) return std::nullopt;

  RankCorrelation result{.n = static_cast<std::int64_t>(x.size()), .rho = *rho};
  const double observed = std::fabs(*rho) - 1e-12;
  std::int64_t as_extreme = 0, orderings = 0;
  const auto count = [&](std::span<const double> permuted) {
    ++orderings;
    if (std::fabs(pearson(rx, permuted).value_or(0.0)) >= observed) ++as_extreme;
  };
  if (result.n <= kExactPermutationLimit) {
    std::sort(ry.begin(), ry.end());
    do {
      count(ry);
    } while (std::next_permutation(ry.begin(), ry.end()));
    // NOTE: with ties, next_permutation visits each distinct ordering once; every distinct
    // ordering stands for the same number of the n! ones, so the share is unchanged.
  } else {
    result.exact = false;
    count(ry);  // the observed ordering counts once (Phipson & Smyth 2010)
    SplitMix64 random(0);
    std::vector<double> permuted = ry;
    for (std::int64_t draw = 0; draw < kSampledPermutations; ++draw) {
      for (std::size_t i = permuted.size() - 1; i > 0; --i) {
        std::swap(permuted[i], permuted[static_cast<std::size_t>(random.uniform(i + 1))]);
      }
      count(permuted);
    }
  }
  result.p_value = static_cast<double>(as_extreme) / static_cast<double>(orderings);
  return result;
}

}  // namespace kvsafe::eval
