// kernels::KvQuantSpec: labels round-trip, canonical JSON stability, validation errors.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>
#include <string>

#include "common/error.h"
#include "kernels/kv_quant_spec.h"

namespace kvsafe::kernels {
namespace {

TEST(KvQuantSpec, LabelsRoundTrip) {
  for (const char* label : {"none",
                            "int4-ptok-asym",
                            "int3-ptensor-sym",
                            "int4-g64-sym",
                            "kivi2-r128",
                            "fp8e5m2",
                            "fp8e4m3-cal-cache",
                            "int4-ptok-asym+fp16[0,2]",
                            "int4-kpchan-vg32-asym",
                            "int4v2-ptok-asym",
                            "int4-ptok-sym-vasym",
                            "q8_0-cache",
                            "q4_1-cache",
                            "kivi2-g64-vg32-r128-cache",
                            "int3-ptensor-sym@[2]",
                            "int4-ptok-asym+int8-ptok-asym[10,11,12]",
                            "int3-ptensor-sym+out[1,5]",
                            "int3-ptensor-sym+ch[0,1,2]",
                            "int4-ptok-asym-cache-qprefill-prerope-fp32s",
                            "int4-ptok-asym+out6"}) {
    const KvQuantSpec spec = parse_kv_label(label);
    EXPECT_EQ(kv_label(spec), label);
    EXPECT_EQ(kv_spec_from_json(canonical_json(spec)), spec) << label;
  }
}

TEST(KvQuantSpec, LabelParsingAcceptsRanges) {
  const KvQuantSpec spec = parse_kv_label("int4-ptok-asym+int8-ptok-asym[10-15]");
  ASSERT_EQ(spec.layer_rules.size(), 1u);
  EXPECT_EQ(spec.layer_rules[0].layers, (std::vector<int>{10, 11, 12, 13, 14, 15}));
  EXPECT_EQ(parse_kv_label("kivi2").residual, 128);
  EXPECT_EQ(parse_kv_label("int16-ptok-asym"), KvQuantSpec{});
}

TEST(KvQuantSpec, CanonicalJsonOfTheFirstGridLanguageIsUnchanged) {
  // These strings are what cell ids hashed before the kernels existed; they must not move.
  EXPECT_EQ(canonical_json(parse_kv_label("int4-ptok-asym")),
            R"({"bits":4,"key_granularity":"per_token","outlier_channels":0,"placement":"projection",)"
            R"("protect_layers":[],"residual":0,"scheme":"int","symmetric":false,"value_granularity":"per_token"})");
  EXPECT_EQ(canonical_json(parse_kv_label("fp8e5m2-cache")),
            R"({"outlier_channels":0,"placement":"cache","prefill_attention":"exact","protect_layers":[],)"
            R"("residual":0,"scheme":"fp8_e5m2"})");
  EXPECT_EQ(canonical_json(KvQuantSpec{}), R"({"scheme":"none"})");
  EXPECT_EQ(kv_spec_hash(KvQuantSpec{}).size(), 64u);
  EXPECT_NE(kv_spec_hash(parse_kv_label("fp8e4m3")), kv_spec_hash(parse_kv_label("fp8e4m3-cal")));
}

TEST(KvQuantSpec, JsonKeyListIsExactlyWhatCanonicalJsonWrites) {
  // Two specs that together set every field to a non-default value: the keys their canonical
  // JSON writes are the list the grid language and kv_spec_from_json both read.
  KvQuantSpec a;
  a.scheme = KvScheme::kInt;
  a.bits = 4;
  a.symmetric = true;
  a.key_granularity = Granularity::kPerGroup;
  a.value_granularity = Granularity::kPerGroup;
  a.group_size = 64;
  a.placement = Placement::kCache;
  a.prefill_attention = PrefillAttention::kQuantized;
  a.residual = 32;
  a.protect_layers = {0};
  a.value_bits = 8;
  a.value_symmetric = false;
  a.value_group_size = 32;
  a.layers = {0, 1, 2};
  a.layer_rules = {KvLayerRule{.layers = {1}, .bits = 8}};
  a.quantize_channels = {3, 5};
  a.pre_rope = true;
  a.fp32_scales = true;
  KvQuantSpec b;
  b.scheme = KvScheme::kFp8E4M3;
  b.placement = Placement::kCache;
  b.fp8_scale = Fp8ScaleSource::kCalibrated;
  std::set<std::string> written;
  for (const KvQuantSpec& spec : {a, b}) {
    const nlohmann::json object = nlohmann::json::parse(canonical_json(spec));
    for (auto it = object.begin(); it != object.end(); ++it) written.insert(it.key());
  }
  const auto keys = kv_spec_json_keys();
  EXPECT_EQ(written, std::set<std::string>(keys.begin(), keys.end()));
  EXPECT_EQ(keys.size(), written.size()) << "a key is listed twice";
  EXPECT_EQ(kv_spec_from_json(canonical_json(a)), canonicalize(a));
}

TEST(KvQuantSpec, KeysOnlyAndValuesOnly) {
  // 16 bits on one side leaves that side exact: the paper's K/V asymmetry analysis.
  KvQuantSpec values_only{.scheme = KvScheme::kInt,
                          .bits = 16,
                          .symmetric = false,
                          .key_granularity = Granularity::kPerToken,
                          .value_granularity = Granularity::kPerGroup,
                          .group_size = 0};
  values_only.value_bits = 3;
  values_only.value_symmetric = true;
  values_only.value_group_size = 64;
  // Every way of writing "values only" is one spec: the value side's settings become the spec's.
  const KvQuantSpec canonical = canonicalize(values_only);
  EXPECT_EQ(canonical.scheme, KvScheme::kInt);
  EXPECT_TRUE(canonical.symmetric);
  EXPECT_EQ(canonical.key_granularity, Granularity::kPerGroup);
  EXPECT_EQ(canonical.group_size, 64);
  EXPECT_EQ(kv_label(values_only), "int16v3-g64-sym");
  EXPECT_EQ(parse_kv_label("int16v3-g64-sym"), canonical);
  EXPECT_EQ(kv_spec_from_json(canonical_json(values_only)), canonical);
  EXPECT_TRUE(validate_kv_spec(values_only).empty());

  const KvQuantSpec keys_only = parse_kv_label("int4v16-kptok-vg32-asym");
  EXPECT_EQ(kv_label(keys_only), "int4v16-ptok-asym");
  EXPECT_EQ(resolve_side(keys_only, KvSide::kValue, 0).scheme, KvScheme::kNone);
  EXPECT_EQ(resolve_side(keys_only, KvSide::kKey, 0).bits, 4);
  EXPECT_EQ(resolve_side(values_only, KvSide::kKey, 0).scheme, KvScheme::kNone);
  const KvSideSpec value_side = resolve_side(values_only, KvSide::kValue, 0);
  EXPECT_EQ(value_side.scheme, KvScheme::kInt);
  EXPECT_EQ(value_side.bits, 3);
  EXPECT_TRUE(value_side.symmetric);
  EXPECT_EQ(value_side.granularity, Granularity::kPerGroup);
  EXPECT_EQ(value_side.group_size, 64);

  // The exact side costs 16 bits and no scales.
  EXPECT_DOUBLE_EQ(effective_bits(keys_only), 0.5 * (4 + 32.0 / 128) + 0.5 * 16);
  EXPECT_DOUBLE_EQ(effective_bits(values_only), 0.5 * 16 + 0.5 * (3 + 16.0 / 64));
  // Both sides at 16 is full precision; a per_tensor exact side is no placement-cache problem.
  EXPECT_EQ(parse_kv_label("int16v16-ptok-asym"), KvQuantSpec{});
  EXPECT_TRUE(validate_kv_spec(parse_kv_label("int4v16-kptok-vptensor-asym-cache")).empty());
  // Only int leaves a side exact; other widths stay refused.
  KvQuantSpec kivi{.scheme = KvScheme::kKivi, .bits = 2, .group_size = 32};
  kivi.value_bits = 16;
  EXPECT_FALSE(validate_kv_spec(kivi).empty());
  KvQuantSpec nine{.scheme = KvScheme::kInt, .bits = 4};
  nine.value_bits = 9;
  ASSERT_FALSE(validate_kv_spec(nine).empty());
  EXPECT_EQ(validate_kv_spec(nine)[0].message, "value_bits must be 2..8 or 16 (values left exact), got 9");
}

TEST(KvQuantSpec, EffectiveBits) {
  EXPECT_DOUBLE_EQ(effective_bits(KvQuantSpec{}), 16.0);
  EXPECT_DOUBLE_EQ(effective_bits(parse_kv_label("q8_0")), 8.5);
  EXPECT_DOUBLE_EQ(effective_bits(parse_kv_label("q4_1")), 5.0);
  EXPECT_DOUBLE_EQ(effective_bits(parse_kv_label("fp8e4m3")), 8.0);
  // int4 per-token asym, head_dim 128: 4 + 32/128.
  EXPECT_DOUBLE_EQ(effective_bits(parse_kv_label("int4-ptok-asym")), 4.25);
  // Two protected layers of 32 at 16 bits.
  EXPECT_DOUBLE_EQ(effective_bits(parse_kv_label("int4-ptok-asym+fp16[0,1]")), 30.0 / 32 * 4.25 + 2.0 / 32 * 16);
  // 8-bit on 4 of 32 layers.
  EXPECT_DOUBLE_EQ(effective_bits(parse_kv_label("int4-ptok-asym+int8-ptok-asym[0-3]")), (28 * 4.25 + 4 * 8.25) / 32);
}

TEST(KvQuantSpec, InvalidCombinationsAreRefused) {
  const auto problem = [](const KvQuantSpec& s) {
    const auto p = validate_kv_spec(s);
    return p.empty() ? std::string() : p[0].key + ": " + p[0].message;
  };
  EXPECT_EQ(problem(KvQuantSpec{.scheme = KvScheme::kInt, .bits = 9}), "bits: bits must be 2..8 or 16, got 9");
  EXPECT_EQ(problem(KvQuantSpec{.scheme = KvScheme::kInt, .bits = 4, .key_granularity = Granularity::kPerGroup}),
            "key_granularity: per_group granularity requires group_size");
  EXPECT_EQ(problem(KvQuantSpec{.scheme = KvScheme::kKivi, .bits = 16}), "bits: scheme kivi needs bits 2..8, got 16");
  EXPECT_EQ(problem(KvQuantSpec{.scheme = KvScheme::kInt,
                                .bits = 4,
                                .key_granularity = Granularity::kPerTensor,
                                .placement = Placement::kCache}),
            "granularity: per_tensor needs the whole tensor at once; with placement cache use per_token, per_group "
            "or per_channel");
  EXPECT_EQ(problem(KvQuantSpec{.scheme = KvScheme::kKivi, .bits = 2, .group_size = 32, .residual = 100}),
            "residual: residual 100 must be a multiple of group_size 32 (keys flush whole token groups)");
  EXPECT_EQ(problem(KvQuantSpec{.scheme = KvScheme::kInt, .bits = 4, .fp8_scale = Fp8ScaleSource::kCalibrated}),
            "fp8_scale: fp8_scale calibrated applies to schemes fp8_e4m3 and fp8_e5m2");
  EXPECT_THROW(parse_kv_label("int4-ptok"), InputError);
  EXPECT_THROW(parse_kv_label("int4-pfoo-asym"), InputError);
  EXPECT_THROW(parse_kv_label("int9-ptok-asym"), InputError);
  EXPECT_THROW(parse_kv_label("int4-ptok-asym+int8-ptok-asym[0]+fp16[0]"), InputError);  // overlapping layers
  EXPECT_THROW(parse_kv_label("zzz"), InputError);
  EXPECT_THROW(kv_spec_from_json(R"({"scheme":"int","bits":4,"bogus":1})"), InputError);
  try {
    parse_kv_label("int4-g64");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("int4-g64"), std::string::npos);
  }
}

TEST(KvQuantSpec, ResolveSide) {
  const KvQuantSpec spec = parse_kv_label("int4-ptok-asym+fp16[0]+int8-pchan-sym[2]");
  EXPECT_EQ(resolve_side(spec, KvSide::kKey, 0).scheme, KvScheme::kNone);
  EXPECT_EQ(resolve_side(spec, KvSide::kKey, 1).bits, 4);
  const KvSideSpec l2 = resolve_side(spec, KvSide::kValue, 2);
  EXPECT_EQ(l2.bits, 8);
  EXPECT_TRUE(l2.symmetric);
  EXPECT_EQ(l2.granularity, Granularity::kPerChannel);
  EXPECT_FALSE(l2.single_token_per_token);  // plain quantizer: no fallback
  // The paper's KIVI (projection): keys per_channel asym with the single-token fallback.
  const KvSideSpec k = resolve_side(parse_kv_label("kivi2-r0"), KvSide::kKey, 5);
  EXPECT_EQ(k.scheme, KvScheme::kInt);
  EXPECT_EQ(k.granularity, Granularity::kPerChannel);
  EXPECT_TRUE(k.single_token_per_token);
  const KvSideSpec v = resolve_side(parse_kv_label("kivi2-r0"), KvSide::kValue, 5);
  EXPECT_EQ(v.granularity, Granularity::kPerGroup);
  EXPECT_EQ(v.group_size, 32);
  EXPECT_EQ(resolve_side(parse_kv_label("int3-ptensor-sym@[2]"), KvSide::kKey, 1).scheme, KvScheme::kNone);
  EXPECT_EQ(resolve_side(parse_kv_label("int4v2-ptok-asym"), KvSide::kValue, 1).bits, 2);
}

}  // namespace
}  // namespace kvsafe::kernels
