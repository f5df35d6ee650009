// KvQuantSpec <-> canonical JSON, and the stable hash.
//
// NOTE: the keys of the first grid language (scheme, bits, symmetric, key_granularity,
// value_granularity, group_size, placement, prefill_attention, residual, protect_layers,
// outlier_channels) are written exactly as before; keys added with the kernels are written
// only when they differ from their default, so existing cell ids do not move.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <string>

#include "common/error.h"
#include "common/sha256.h"
#include "kernels/kv_quant_spec.h"

namespace kvsafe::kernels {
namespace {

bool is_int_like(KvScheme s) {
  return s == KvScheme::kInt || s == KvScheme::kKivi;
}

nlohmann::json rule_json(const KvLayerRule& rule) {
  nlohmann::json j = nlohmann::json::object();
  j["layers"] = rule.layers;
  j["scheme"] = to_string(rule.scheme);
  if (is_int_like(rule.scheme)) j["bits"] = rule.bits;
  if (rule.scheme == KvScheme::kInt) {
    j["symmetric"] = rule.symmetric;
    j["key_granularity"] = to_string(rule.key_granularity);
    j["value_granularity"] = to_string(rule.value_granularity);
  }
  if (rule.group_size > 0) j["group_size"] = rule.group_size;
  return j;
}

template <typename T>
T need(const nlohmann::json& j, const char* key) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw InputError(std::string("KV spec JSON: key `") + key + "`: " + e.what());
  }
}

template <typename E>
E need_enum(const nlohmann::json& j, const char* key, std::optional<E> (*parse)(std::string_view)) {
  const auto text = need<std::string>(j, key);
  const std::optional<E> value = parse(text);
  KVSAFE_CHECK(value.has_value(), "KV spec JSON: key `", key, "`: unknown value `", text, "`");
  return *value;
}

KvLayerRule rule_from_json(const nlohmann::json& j) {
  KvLayerRule rule;
  rule.layers = need<std::vector<int>>(j, "layers");
  rule.scheme = need_enum<KvScheme>(j, "scheme", parse_kv_scheme);
  if (j.contains("bits")) rule.bits = need<int>(j, "bits");
  if (j.contains("symmetric")) rule.symmetric = need<bool>(j, "symmetric");
  if (j.contains("key_granularity")) {
    rule.key_granularity = need_enum<Granularity>(j, "key_granularity", parse_granularity);
  }
  if (j.contains("value_granularity")) {
    rule.value_granularity = need_enum<Granularity>(j, "value_granularity", parse_granularity);
  }
  if (j.contains("group_size")) rule.group_size = need<int>(j, "group_size");
  return rule;
}

}  // namespace

std::string canonical_json(const KvQuantSpec& input) {
  const KvQuantSpec spec = canonicalize(input);
  nlohmann::json j = nlohmann::json::object();
  j["scheme"] = to_string(spec.scheme);
  if (spec.scheme == KvScheme::kNone) return j.dump();
  if (is_int_like(spec.scheme)) j["bits"] = spec.bits;
  if (spec.scheme == KvScheme::kInt) {
    j["symmetric"] = spec.symmetric;
    j["key_granularity"] = to_string(spec.key_granularity);
    j["value_granularity"] = to_string(spec.value_granularity);
  }
  if (spec.group_size > 0) j["group_size"] = spec.group_size;
  j["placement"] = to_string(spec.placement);
  if (spec.placement == Placement::kCache) j["prefill_attention"] = to_string(spec.prefill_attention);
  j["residual"] = spec.residual;
  j["protect_layers"] = spec.protect_layers;
  if (spec.outliers.explicit_list) {
    j["outlier_channels"] = spec.outliers.channels;
  } else {
    j["outlier_channels"] = spec.outliers.count;
  }
  // Later keys: only when set.
  if (spec.value_bits > 0) j["value_bits"] = spec.value_bits;
  if (spec.value_symmetric) j["value_symmetric"] = *spec.value_symmetric;
  if (spec.value_group_size > 0) j["value_group_size"] = spec.value_group_size;
  if (!spec.layers.empty()) j["layers"] = spec.layers;
  if (!spec.layer_rules.empty()) {
    nlohmann::json rules = nlohmann::json::array();
    for (const KvLayerRule& r : spec.layer_rules) rules.push_back(rule_json(r));
    j["layer_rules"] = rules;
  }
  if (!spec.quantize_channels.empty()) j["quantize_channels"] = spec.quantize_channels;
  if (spec.fp8_scale != Fp8ScaleSource::kUnit) j["fp8_scale"] = to_string(spec.fp8_scale);
  if (spec.pre_rope) j["pre_rope"] = true;
  if (spec.fp32_scales) j["fp32_scales"] = true;
  return j.dump();  // nlohmann objects are std::map-ordered: keys come out sorted
}

std::span<const std::string_view> kv_spec_json_keys() {
  // NOTE: the grid language crosses sweeps in this order; the first eleven are the original
  // language, so new keys go at the end (existing grids keep their expansion order).
  static constexpr std::array<std::string_view, 20> kKeys = {"scheme",
                                                             "bits",
                                                             "symmetric",
                                                             "key_granularity",
                                                             "value_granularity",
                                                             "group_size",
                                                             "placement",
                                                             "prefill_attention",
                                                             "residual",
                                                             "protect_layers",
                                                             "outlier_channels",
                                                             "value_bits",
                                                             "value_symmetric",
                                                             "value_group_size",
                                                             "layers",
                                                             "layer_rules",
                                                             "quantize_channels",
                                                             "fp8_scale",
                                                             "pre_rope",
                                                             "fp32_scales"};
  return kKeys;
}

KvQuantSpec kv_spec_from_json(std::string_view text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(std::string("KV spec JSON does not parse: ") + e.what());
  }
  KVSAFE_CHECK(j.is_object(), "KV spec JSON must be an object");

  for (const auto& item : j.items()) {
    const auto keys = kv_spec_json_keys();
    KVSAFE_CHECK(std::find(keys.begin(), keys.end(), item.key()) != keys.end(), "KV spec JSON: unknown key `",
                 item.key(), "`");
  }
  KvQuantSpec spec;
  spec.scheme = need_enum<KvScheme>(j, "scheme", parse_kv_scheme);
  if (spec.scheme == KvScheme::kInt || spec.scheme == KvScheme::kKivi) spec.bits = need<int>(j, "bits");
  if (j.contains("symmetric")) spec.symmetric = need<bool>(j, "symmetric");
  if (j.contains("key_granularity")) {
    spec.key_granularity = need_enum<Granularity>(j, "key_granularity", parse_granularity);
  }
  if (j.contains("value_granularity")) {
    spec.value_granularity = need_enum<Granularity>(j, "value_granularity", parse_granularity);
  }
  if (j.contains("group_size")) spec.group_size = need<int>(j, "group_size");
  if (j.contains("placement")) spec.placement = need_enum<Placement>(j, "placement", parse_placement);
  if (j.contains("prefill_attention")) {
    spec.prefill_attention = need_enum<PrefillAttention>(j, "prefill_attention", parse_prefill_attention);
  }
  if (j.contains("residual")) spec.residual = need<int>(j, "residual");
  if (j.contains("protect_layers")) spec.protect_layers = need<std::vector<int>>(j, "protect_layers");
  if (j.contains("outlier_channels")) {
    if (j["outlier_channels"].is_array()) {
      spec.outliers.explicit_list = true;
      spec.outliers.channels = need<std::vector<int>>(j, "outlier_channels");
    } else {
      spec.outliers.count = need<int>(j, "outlier_channels");
    }
  }
  if (j.contains("value_bits")) spec.value_bits = need<int>(j, "value_bits");
  if (j.contains("value_symmetric")) spec.value_symmetric = need<bool>(j, "value_symmetric");
  if (j.contains("value_group_size")) spec.value_group_size = need<int>(j, "value_group_size");
  if (j.contains("layers")) spec.layers = need<std::vector<int>>(j, "layers");
  if (j.contains("layer_rules")) {
    KVSAFE_CHECK(j["layer_rules"].is_array(), "KV spec JSON: key `layer_rules` must be an array");
    for (const auto& r : j["layer_rules"]) spec.layer_rules.push_back(rule_from_json(r));
  }
  if (j.contains("quantize_channels")) spec.quantize_channels = need<std::vector<int>>(j, "quantize_channels");
  if (j.contains("fp8_scale")) {
    spec.fp8_scale = need_enum<Fp8ScaleSource>(j, "fp8_scale", parse_fp8_scale_source);
  }
  if (j.contains("pre_rope")) spec.pre_rope = need<bool>(j, "pre_rope");
  if (j.contains("fp32_scales")) spec.fp32_scales = need<bool>(j, "fp32_scales");
  check_kv_spec(spec);
  return canonicalize(spec);
}

std::string kv_spec_hash(const KvQuantSpec& spec) {
  return sha256_hex(canonical_json(spec));
}

}  // namespace kvsafe::kernels
