// The outlier-channel rule, the numpy random channel sets and the PCR bootstrap of
// eval/diagnosis.h: hand-worked cases, and exact agreement with numpy through the committed
// output of tests/oracles/outlier_channels_oracle.py (fixtures/outlier_channels_oracle.json, made
// from fixtures/outlier_channels_input.json). No Python runs here.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "common/error.h"
#include "eval/diagnosis.h"

namespace kvsafe::eval {
namespace {

using Channels = std::vector<std::int64_t>;

nlohmann::json read_fixture(const char* name) {
  std::ifstream in(std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests" / "eval" / "fixtures" / name);
  if (!in.good()) throw std::runtime_error(std::string("missing fixture ") + name);
  return nlohmann::json::parse(in);
}

const nlohmann::json& oracle() {
  static const nlohmann::json fixture = read_fixture("outlier_channels_oracle.json");
  return fixture;
}

std::vector<float> floats(const nlohmann::json& values) {
  std::vector<float> out;
  // Each JSON number is the exact double widening of a float32: narrowing it back is exact.
  for (const auto& value : values) out.push_back(static_cast<float>(value.get<double>()));
  return out;
}

Channels sorted(Channels channels) {
  std::sort(channels.begin(), channels.end());
  return channels;
}

TEST(NumpyPercentile, HandWorkedCases) {
  // [1..9, 10.5], 95th: v = 9 · 0.95 = 8.55, between 9 and 10.5 with g = 0.55 >= 0.5, so
  // 10.5 - 1.5 · 0.45 = 9.825. In float32 (numpy >= 2 on float32 data) 0.95f, 8.55f and the
  // products round differently: 9.825001f.
  const std::vector<double> d = {10.5, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<float> f(d.begin(), d.end());
  EXPECT_EQ(numpy_percentile(std::span<const double>(d), 95), 9.825);
  EXPECT_EQ(numpy_percentile(std::span<const float>(f), 95), 9.825001f);
  EXPECT_NE(numpy_percentile(std::span<const float>(f), 95), 9.825f);
  // 50th of 10 values: v = 4.5, g = 0.5: 6 - 1 · 0.5 = 5.5.
  EXPECT_EQ(numpy_percentile(std::span<const double>(d), 50), 5.5);
  // The ends are the minimum and the maximum; one value is every percentile.
  EXPECT_EQ(numpy_percentile(std::span<const double>(d), 0), 1.0);
  EXPECT_EQ(numpy_percentile(std::span<const double>(d), 100), 10.5);
  EXPECT_EQ(numpy_percentile(std::span<const float>(f), 100), 10.5f);
  const std::vector<float> one = {3.5f};
  EXPECT_EQ(numpy_percentile(std::span<const float>(one), 95), 3.5f);
  // 25th of [0, 4]: v = 0.25: 0 + 4 · 0.25 = 1.
  const std::vector<double> two = {4, 0};
  EXPECT_EQ(numpy_percentile(std::span<const double>(two), 25), 1.0);
  EXPECT_THROW((void)numpy_percentile(std::span<const double>(), 50), InputError);
  EXPECT_THROW((void)numpy_percentile(std::span<const double>(d), 101), InputError);
  EXPECT_THROW((void)numpy_percentile(std::span<const double>(d), -1), InputError);
  const std::vector<float> nan = {1.0f, std::nanf("")};
  EXPECT_THROW((void)numpy_percentile(std::span<const float>(nan), 50), InputError);
}

TEST(ChannelMaxAbs, MaxOfAbsoluteValuesOverPromptsAndTokens) {
  ChannelMaxAbs max_abs(3);
  EXPECT_EQ(max_abs.values(), (std::vector<float>{0, 0, 0}));
  const std::vector<float> first = {1.0f, -5.0f, 0.5f, -2.0f, 4.0f, 0.25f};  // 2 tokens
  const std::vector<float> second = {0.0f, -0.5f, -7.5f};                    // 1 token
  max_abs.add(first);
  max_abs.add(second);
  EXPECT_EQ(max_abs.values(), (std::vector<float>{2.0f, 5.0f, 7.5f}));
  EXPECT_EQ(max_abs.tokens(), 3);
  max_abs.add(std::vector<float>{});  // a prompt of no tokens changes nothing
  EXPECT_EQ(max_abs.tokens(), 3);
  EXPECT_THROW(max_abs.add(std::vector<float>{1.0f, 2.0f}), InputError);
  EXPECT_THROW(max_abs.add(std::vector<float>{1.0f, std::nanf(""), 2.0f}), InputError);
  EXPECT_THROW(ChannelMaxAbs(0), InputError);
}

// The naive baseline's ranking, by hand: norms sqrt(9+16) = 5, sqrt(1) = 1, sqrt(36+64) = 10,
// sqrt(25) = 5 (a tie with layer 0: the lower layer first).
TEST(KeyNorm, LayersByDescendingNormTiesToTheLowerLayer) {
  const std::vector<std::vector<float>> layers = {{3, -4}, {1, 0}, {6, 8}, {0, 5}};
  EXPECT_EQ(layers_by_key_norm(layers), (std::vector<int>{2, 0, 3, 1}));
  EXPECT_THROW((void)layers_by_key_norm(std::vector<std::vector<float>>{{1}, {}}), InputError);
  EXPECT_THROW((void)layers_by_key_norm(std::vector<std::vector<float>>{{std::nanf("")}}), InputError);
}

TEST(OutlierChannels, HandWorkedRule) {
  // 20 channels valued 1..20: v = 19 · 0.95f = 18.05, threshold 19 + 1 · 0.05 = 19.05 (in float32):
  // only channel 19 (value 20) is at or above it -- 1 channel, 5%.
  std::vector<float> values(20);
  std::iota(values.begin(), values.end(), 1.0f);
  const OutlierChannels rule = select_outlier_channels(values);
  EXPECT_EQ(rule.percentile, 95);
  EXPECT_NEAR(rule.threshold, 19.05f, 1e-5f);
  EXPECT_EQ(rule.outliers, (Channels{19}));
  EXPECT_EQ(rule.random_control.size(), 1u);
  // 10%: v = 19 · 0.9 = 17.1 -> 18.1: channels 18 and 19.
  EXPECT_EQ(select_outlier_channels(values, {.outlier_fraction = 0.10}).outliers, (Channels{18, 19}));
  // Ties at the threshold are all in: five channels share the maximum.
  std::vector<float> ties(20, 1.0f);
  for (const int c : {2, 5, 11, 12, 17}) ties[static_cast<std::size_t>(c)] = 9.0f;
  EXPECT_EQ(select_outlier_channels(ties).outliers, (Channels{2, 5, 11, 12, 17}));
  EXPECT_EQ(select_outlier_channels(ties).random_control.size(), 5u);
  EXPECT_THROW((void)select_outlier_channels(values, {.outlier_fraction = 0}), InputError);
  EXPECT_THROW((void)select_outlier_channels(values, {.outlier_fraction = 1.5}), InputError);
  EXPECT_THROW((void)select_outlier_channels(std::vector<float>{}), InputError);
}

TEST(NumpyLegacyRandom, Basics) {
  NumpyLegacyRandom rng(42);
  EXPECT_TRUE(rng.choice_without_replacement(10, 0).empty());
  // k = n is a permutation.
  Channels all = NumpyLegacyRandom(42).choice_without_replacement(50, 50);
  EXPECT_EQ(sorted(all), [] {
    Channels c(50);
    std::iota(c.begin(), c.end(), 0);
    return c;
  }());
  // The first k of the permutation: a smaller k is a prefix of the same seed's larger draw.
  const Channels five = NumpyLegacyRandom(42).choice_without_replacement(50, 5);
  EXPECT_TRUE(std::equal(five.begin(), five.end(), all.begin()));
  EXPECT_THROW((void)rng.choice_without_replacement(3, 4), InputError);
  EXPECT_THROW((void)rng.choice_without_replacement(3, -1), InputError);
}

// ---------------------------------------------------------------------------------------------
// Against numpy (tests/oracles/outlier_channels_oracle.py).

TEST(OutlierChannelsOracle, ChannelMaxFromCapturedKeys) {
  const nlohmann::json input = read_fixture("outlier_channels_input.json");
  for (const auto& key_case : input.at("key_cases")) {
    const auto channels = key_case.at("channels").get<std::int64_t>();
    ChannelMaxAbs max_abs(channels);
    std::int64_t tokens = 0;
    for (const auto& prompt : key_case.at("prompts")) {
      const std::vector<float> keys = floats(prompt);
      max_abs.add(keys);
      tokens += static_cast<std::int64_t>(keys.size()) / channels;
    }
    EXPECT_EQ(max_abs.tokens(), tokens);
    const auto name = key_case.at("name").get<std::string>();
    const auto expected = std::find_if(oracle().at("cases").begin(), oracle().at("cases").end(),
                                       [&](const nlohmann::json& c) { return c.at("name") == name; });
    ASSERT_NE(expected, oracle().at("cases").end()) << name;
    EXPECT_EQ(max_abs.values(), floats(expected->at("channel_max"))) << name;
  }
}

TEST(OutlierChannelsOracle, ThresholdOutliersAndRandomControlEqualNumpy) {
  ASSERT_GE(oracle().at("cases").size(), 7u);
  for (const auto& c : oracle().at("cases")) {
    const auto name = c.at("name").get<std::string>();
    SCOPED_TRACE(name);
    const std::vector<float> channel_max = floats(c.at("channel_max"));
    const OutlierChannels rule =
        select_outlier_channels(channel_max, {.outlier_fraction = c.at("outlier_fraction").get<double>()});
    EXPECT_EQ(rule.percentile, c.at("percentile").get<double>());
    EXPECT_EQ(std::bit_cast<std::uint32_t>(rule.threshold), c.at("threshold_f32_bits").get<std::uint32_t>());
    EXPECT_EQ(rule.outliers, c.at("outliers").get<Channels>());
    EXPECT_EQ(rule.random_control, sorted(c.at("random_control_numpy_order").get<Channels>()));
    EXPECT_EQ(NumpyLegacyRandom(42).choice_without_replacement(static_cast<std::int64_t>(channel_max.size()),
                                                               static_cast<std::int64_t>(rule.outliers.size())),
              c.at("random_control_numpy_order").get<Channels>());
    // The same rule on float64 data (numpy's float64 path), for the double overload.
    const std::vector<double> widened(channel_max.begin(), channel_max.end());
    const double threshold64 = numpy_percentile(std::span<const double>(widened), rule.percentile);
    EXPECT_EQ(threshold64, c.at("threshold_f64").get<double>());
    Channels outliers64;
    for (std::size_t i = 0; i < widened.size(); ++i) {
      if (widened[i] >= threshold64) outliers64.push_back(static_cast<std::int64_t>(i));
    }
    EXPECT_EQ(outliers64, c.at("outliers_f64").get<Channels>());
  }
}

TEST(OutlierChannelsOracle, Float32ArithmeticDecidesAdjacentValues) {
  // Two adjacent float32 values at the 95th percentile of 20 channels: numpy >= 2 (float32
  // arithmetic, the paper's numpy 2.2.6) rounds the threshold down onto the lower one and takes
  // both; the float64 rule takes only the upper one. The fixture holds numpy's own answer.
  const auto& cases = oracle().at("cases");
  const auto adjacent = std::find_if(cases.begin(), cases.end(),
                                     [](const nlohmann::json& c) { return c.at("name") == "adjacent_floats_20"; });
  ASSERT_NE(adjacent, cases.end());
  EXPECT_EQ(adjacent->at("outliers").size(), 2u);
  EXPECT_EQ(adjacent->at("outliers_f64").size(), 1u);
  EXPECT_EQ(select_outlier_channels(floats(adjacent->at("channel_max"))).outliers.size(), 2u);
}

TEST(OutlierChannelsOracle, ChannelAblationSubsetsEqualNumpy) {
  std::int64_t checked = 0;
  for (const auto& c : oracle().at("cases")) {
    if (!c.contains("ablation")) continue;
    SCOPED_TRACE(c.at("name").get<std::string>());
    const auto& expected = c.at("ablation");
    const ChannelAblationSubsets subsets = channel_ablation_subsets(floats(c.at("channel_max")));
    EXPECT_EQ(subsets.outliers.outliers, c.at("outliers").get<Channels>());
    EXPECT_EQ(subsets.non_outliers, expected.at("non_outliers").get<Channels>());
    EXPECT_EQ(std::bit_cast<std::uint32_t>(subsets.low_threshold),
              std::bit_cast<std::uint32_t>(static_cast<float>(expected.at("low_threshold_f32").get<double>())));
    EXPECT_EQ(subsets.low_magnitude, expected.at("low_magnitude").get<Channels>());
    EXPECT_EQ(subsets.low_magnitude.size(), 100u);  // the paper's [:100] cap
    ASSERT_EQ(subsets.random.size(), 5u);
    for (const auto& random : subsets.random) {
      EXPECT_EQ(random.channels, expected.at("random").at(std::to_string(random.percent)).get<Channels>())
          << random.percent << "%";
    }
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

TEST(PcrBootstrapOracle, PinnedIntervalsEqualTheRestatement) {
  // The oracle restates estimate_pcr from its header comment (SplitMix64 draws in Python,
  // np.percentile for the bounds): the same doubles, bit for bit.
  const nlohmann::json input = read_fixture("outlier_channels_input.json");
  const auto& expected = oracle().at("bootstrap");
  ASSERT_EQ(input.at("bootstrap_cases").size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& in = input.at("bootstrap_cases")[i];
    SCOPED_TRACE(in.at("name").get<std::string>());
    const auto pt = in.at("per_tensor").get<std::vector<int>>();
    const auto pc = in.at("per_channel").get<std::vector<int>>();
    std::vector<PairedFlip> flips;
    for (std::size_t j = 0; j < pt.size(); ++j) flips.push_back({.per_tensor = pt[j] != 0, .per_channel = pc[j] != 0});
    const PcrEstimate estimate = estimate_pcr(flips, {.resamples = in.at("resamples").get<std::int64_t>(),
                                                      .seed = in.at("seed").get<std::uint64_t>(),
                                                      .confidence = in.at("confidence").get<double>()});
    EXPECT_EQ(estimate.pcr, expected[i].at("pcr").get<double>());
    EXPECT_EQ(estimate.lower, expected[i].at("lower").get<double>());
    EXPECT_EQ(estimate.upper, expected[i].at("upper").get<double>());
    EXPECT_EQ(estimate.zero_denominator_resamples, expected[i].at("zero_denominator_resamples").get<std::int64_t>());
  }
}

}  // namespace
}  // namespace kvsafe::eval
