// KvQuantSpec: names, validation, canonical form, effective bits and per-side resolution.
// JSON lives in kv_quant_spec_json.cpp, labels in kv_quant_label.cpp.

#include <algorithm>
#include <set>
#include <string>

#include "common/error.h"
#include "kernels/kv_quant_spec.h"

namespace kvsafe::kernels {
namespace {

constexpr KvScheme kAllSchemes[] = {KvScheme::kNone, KvScheme::kInt,  KvScheme::kFp8E4M3, KvScheme::kFp8E5M2,
                                    KvScheme::kKivi, KvScheme::kQ8_0, KvScheme::kQ4_0,    KvScheme::kQ4_1,
                                    KvScheme::kQ5_0, KvScheme::kQ5_1};

void sort_unique(std::vector<int>* values) {
  std::sort(values->begin(), values->end());
  values->erase(std::unique(values->begin(), values->end()), values->end());
}

bool contains(const std::vector<int>& sorted, int value) {
  return std::binary_search(sorted.begin(), sorted.end(), value);
}

bool bits_ok(KvScheme scheme, int bits) {
  if (scheme == KvScheme::kInt) return (bits >= 2 && bits <= 8) || bits == 16;
  if (scheme == KvScheme::kKivi) return bits >= 2 && bits <= 8;
  return true;  // fixed-width schemes ignore bits
}

std::string bits_message(KvScheme scheme, int bits) {
  if (scheme == KvScheme::kKivi) return "scheme kivi needs bits 2..8, got " + std::to_string(bits);
  return "bits must be 2..8 or 16, got " + std::to_string(bits);
}

// Problems of the quantizer part (shared by the spec and its layer rules). `value_bits` is the
// value side's width (a rule's is its bits); a side at 16 bits is left exact, so its
// granularity cannot be wrong.
void validate_quantizer(KvScheme scheme, int bits, int value_bits, Granularity key_g, Granularity value_g,
                        int group_size, int value_group_size, Placement placement, const std::string& prefix,
                        std::vector<KvSpecProblem>* out) {
  if (!bits_ok(scheme, bits)) out->push_back({prefix + "bits", bits_message(scheme, bits)});
  if (scheme == KvScheme::kInt) {
    const bool keys = bits != 16, values = value_bits != 16;
    if (keys && key_g == Granularity::kPerGroup && group_size < 1) {
      out->push_back({prefix + "key_granularity", "per_group granularity requires group_size"});
    }
    if (values && value_g == Granularity::kPerGroup && value_group_size < 1) {
      out->push_back({prefix + "value_granularity", "per_group granularity requires group_size"});
    }
    if (placement == Placement::kCache &&
        ((keys && key_g == Granularity::kPerTensor) || (values && value_g == Granularity::kPerTensor))) {
      out->push_back({prefix + "granularity",
                      "per_tensor needs the whole tensor at once; with placement cache use per_token, per_group "
                      "or per_channel"});
    }
  }
  if (group_size < 0) out->push_back({prefix + "group_size", "group_size must be >= 1"});
}

bool uses_group_size(KvScheme scheme, Granularity key_g, Granularity value_g, Placement placement) {
  if (scheme == KvScheme::kKivi) return true;
  if (scheme != KvScheme::kInt) return false;
  const auto used = [&](Granularity g) {
    return g == Granularity::kPerGroup || (placement == Placement::kCache && g == Granularity::kPerChannel);
  };
  return used(key_g) || used(value_g);
}

// fp16 (or fp32) scale plus a zero point when asymmetric, per statistics group, per element.
double scale_overhead(Granularity g, bool symmetric, int group_size, double scale_bits, const EffectiveBitsOptions& o) {
  const double per_group_bits = symmetric ? scale_bits : 2 * scale_bits;
  switch (g) {
    case Granularity::kPerToken:
      return per_group_bits / o.head_dim;
    case Granularity::kPerChannel:
      return per_group_bits / o.context_tokens;
    case Granularity::kPerGroup:
      return per_group_bits / group_size;
    case Granularity::kPerTensor:
      return 0.0;
  }
  return 0.0;
}

// Bits per element of the quantized part of one layer (keys and values averaged).
double quantized_bits(KvScheme scheme, int bits, int value_bits, bool symmetric, bool value_symmetric,
                      Granularity key_g, Granularity value_g, int group_size, int value_group_size, bool fp32,
                      const EffectiveBitsOptions& o) {
  const double sb = fp32 ? 32.0 : 16.0;
  switch (scheme) {
    case KvScheme::kNone:
      return 16.0;
    case KvScheme::kFp8E4M3:
    case KvScheme::kFp8E5M2:
      return 8.0;
    case KvScheme::kQ8_0:
    case KvScheme::kQ4_0:
    case KvScheme::kQ5_0:
      return fixed_bits(scheme) + 16.0 / 32;  // ggml block: fp16 d per 32
    case KvScheme::kQ4_1:
    case KvScheme::kQ5_1:
      return fixed_bits(scheme) + 32.0 / 32;  // fp16 d and m per 32
    case KvScheme::kKivi:
      if (value_bits == bits && value_group_size == group_size) return bits + 2 * sb / group_size;
      return 0.5 * (bits + 2 * sb / group_size) + 0.5 * (value_bits + 2 * sb / value_group_size);
    case KvScheme::kInt: {
      // Half the elements are keys, half values; a 16-bit side is left exact (no scales).
      const auto side = [&](int b, Granularity g, bool sym, int group) {
        return b == 16 ? 16.0 : b + scale_overhead(g, sym, group, sb, o);
      };
      return 0.5 * side(bits, key_g, symmetric, group_size) +
             0.5 * side(value_bits, value_g, value_symmetric, value_group_size);
    }
  }
  return 16.0;
}

}  // namespace

std::string_view to_string(KvScheme scheme) {
  switch (scheme) {
    case KvScheme::kNone:
      return "none";
    case KvScheme::kInt:
      return "int";
    case KvScheme::kFp8E4M3:
      return "fp8_e4m3";
    case KvScheme::kFp8E5M2:
      return "fp8_e5m2";
    case KvScheme::kKivi:
      return "kivi";
    case KvScheme::kQ8_0:
      return "q8_0";
    case KvScheme::kQ4_0:
      return "q4_0";
    case KvScheme::kQ4_1:
      return "q4_1";
    case KvScheme::kQ5_0:
      return "q5_0";
    case KvScheme::kQ5_1:
      return "q5_1";
  }
  return "?";
}

std::string_view to_string(Granularity granularity) {
  switch (granularity) {
    case Granularity::kPerToken:
      return "per_token";
    case Granularity::kPerChannel:
      return "per_channel";
    case Granularity::kPerGroup:
      return "per_group";
    case Granularity::kPerTensor:
      return "per_tensor";
  }
  return "?";
}

std::string_view to_string(Placement placement) {
  return placement == Placement::kCache ? "cache" : "projection";
}

std::string_view to_string(PrefillAttention prefill) {
  return prefill == PrefillAttention::kQuantized ? "quantized" : "exact";
}

std::string_view to_string(Fp8ScaleSource source) {
  return source == Fp8ScaleSource::kCalibrated ? "calibrated" : "unit";
}

const std::vector<std::string_view>& kv_scheme_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> out;
    for (KvScheme s : kAllSchemes) out.push_back(to_string(s));
    return out;
  }();
  return names;
}

std::optional<KvScheme> parse_kv_scheme(std::string_view text) {
  for (KvScheme s : kAllSchemes) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

std::optional<Granularity> parse_granularity(std::string_view text) {
  for (Granularity g :
       {Granularity::kPerToken, Granularity::kPerChannel, Granularity::kPerGroup, Granularity::kPerTensor}) {
    if (to_string(g) == text) return g;
  }
  return std::nullopt;
}

std::optional<Placement> parse_placement(std::string_view text) {
  if (text == "projection") return Placement::kProjection;
  if (text == "cache") return Placement::kCache;
  return std::nullopt;
}

std::optional<PrefillAttention> parse_prefill_attention(std::string_view text) {
  if (text == "exact") return PrefillAttention::kExact;
  if (text == "quantized") return PrefillAttention::kQuantized;
  return std::nullopt;
}

std::optional<Fp8ScaleSource> parse_fp8_scale_source(std::string_view text) {
  if (text == "unit") return Fp8ScaleSource::kUnit;
  if (text == "calibrated") return Fp8ScaleSource::kCalibrated;
  return std::nullopt;
}

bool is_llama_cpp(KvScheme scheme) {
  return scheme == KvScheme::kQ8_0 || scheme == KvScheme::kQ4_0 || scheme == KvScheme::kQ4_1 ||
         scheme == KvScheme::kQ5_0 || scheme == KvScheme::kQ5_1;
}

bool is_fp8(KvScheme scheme) {
  return scheme == KvScheme::kFp8E4M3 || scheme == KvScheme::kFp8E5M2;
}

int fixed_bits(KvScheme scheme) {
  switch (scheme) {
    case KvScheme::kFp8E4M3:
    case KvScheme::kFp8E5M2:
    case KvScheme::kQ8_0:
      return 8;
    case KvScheme::kQ4_0:
    case KvScheme::kQ4_1:
      return 4;
    case KvScheme::kQ5_0:
    case KvScheme::kQ5_1:
      return 5;
    default:
      return 0;
  }
}

std::vector<KvSpecProblem> validate_kv_spec(const KvQuantSpec& spec) {
  std::vector<KvSpecProblem> out;
  if (spec.scheme == KvScheme::kNone) return out;
  const bool int_like = spec.scheme == KvScheme::kInt || spec.scheme == KvScheme::kKivi;
  const int value_bits = spec.value_bits != 0 ? spec.value_bits : spec.bits;
  const int value_group_size = spec.value_group_size > 0 ? spec.value_group_size : spec.group_size;
  validate_quantizer(spec.scheme, spec.bits, value_bits, spec.key_granularity, spec.value_granularity, spec.group_size,
                     value_group_size, spec.placement, "", &out);
  if (spec.value_bits != 0) {
    if (!int_like) {
      out.push_back({"value_bits", "value_bits applies to schemes int and kivi"});
    } else if (spec.scheme == KvScheme::kInt && !bits_ok(KvScheme::kInt, spec.value_bits)) {
      out.push_back(
          {"value_bits", "value_bits must be 2..8 or 16 (values left exact), got " + std::to_string(spec.value_bits)});
    } else if (spec.scheme == KvScheme::kKivi && (spec.value_bits < 2 || spec.value_bits > 8)) {
      out.push_back({"value_bits", "scheme kivi needs value_bits 2..8, got " + std::to_string(spec.value_bits)});
    }
  }
  if (spec.value_symmetric && spec.scheme != KvScheme::kInt) {
    out.push_back({"value_symmetric", "value_symmetric applies to scheme int"});
  }
  if (spec.value_group_size < 0) out.push_back({"value_group_size", "value_group_size must be >= 1"});
  if (spec.residual < 0) out.push_back({"residual", "residual must be >= 0"});
  // NOTE: token-grouped sides flush a whole residual window at once, so the window must
  // hold whole token groups (KIVI's R is a multiple of G).
  const bool token_grouped =
      spec.scheme == KvScheme::kKivi || (spec.scheme == KvScheme::kInt && spec.placement == Placement::kCache &&
                                         spec.key_granularity == Granularity::kPerChannel);
  if (token_grouped && spec.residual > 0 && spec.group_size > 0 && spec.residual % spec.group_size != 0) {
    out.push_back({"residual", "residual " + std::to_string(spec.residual) + " must be a multiple of group_size " +
                                   std::to_string(spec.group_size) + " (keys flush whole token groups)"});
  }
  for (int layer : spec.protect_layers) {
    if (layer < 0) out.push_back({"protect_layers", "layer ids must be >= 0"});
  }
  for (int layer : spec.layers) {
    if (layer < 0) out.push_back({"layers", "layer ids must be >= 0"});
  }
  for (int c : spec.quantize_channels) {
    if (c < 0) out.push_back({"quantize_channels", "channel ids must be >= 0"});
  }
  if (!spec.quantize_channels.empty() && spec.outliers.kept() > 0) {
    out.push_back(
        {"quantize_channels", "quantize_channels and outlier_channels both select channels; give one of them"});
  }
  if (spec.fp8_scale == Fp8ScaleSource::kCalibrated && !is_fp8(spec.scheme)) {
    out.push_back({"fp8_scale", "fp8_scale calibrated applies to schemes fp8_e4m3 and fp8_e5m2"});
  }
  std::set<int> ruled(spec.protect_layers.begin(), spec.protect_layers.end());
  for (std::size_t i = 0; i < spec.layer_rules.size(); ++i) {
    const KvLayerRule& rule = spec.layer_rules[i];
    const std::string prefix = "layer_rules[" + std::to_string(i) + "].";
    if (rule.layers.empty()) out.push_back({prefix + "layers", "a layer rule needs at least one layer"});
    validate_quantizer(rule.scheme, rule.bits, rule.bits, rule.key_granularity, rule.value_granularity, rule.group_size,
                       rule.group_size, spec.placement, prefix, &out);
    for (int layer : rule.layers) {
      if (layer < 0) out.push_back({prefix + "layers", "layer ids must be >= 0"});
      if (!ruled.insert(layer).second) {
        out.push_back({prefix + "layers", "layer " + std::to_string(layer) +
                                              " already has a rule (or is protected); rules must not overlap"});
      }
    }
  }
  return out;
}

void check_kv_spec(const KvQuantSpec& spec) {
  const auto problems = validate_kv_spec(spec);
  KVSAFE_CHECK(problems.empty(), "invalid KV spec: ", problems.empty() ? "" : problems[0].key, ": ",
               problems.empty() ? "" : problems[0].message);
}

KvQuantSpec canonicalize(KvQuantSpec spec) {
  const KvQuantSpec defaults;
  if (spec.scheme == KvScheme::kInt) {
    if (spec.value_bits == spec.bits) spec.value_bits = 0;
    const int value_bits = spec.value_bits != 0 ? spec.value_bits : spec.bits;
    if (spec.bits == 16 && value_bits == 16) spec.scheme = KvScheme::kNone;
    if (spec.bits == 16 && value_bits != 16) {
      // Keys left exact: the value side's settings become the spec's, so every way of
      // writing "values only" is one spec (and one label, `int16v4-ptok-asym`).
      spec.symmetric = spec.value_symmetric.value_or(spec.symmetric);
      spec.value_symmetric.reset();
      spec.key_granularity = spec.value_granularity;
      if (spec.value_group_size > 0) spec.group_size = spec.value_group_size;
      spec.value_group_size = 0;
    } else if (spec.bits != 16 && value_bits == 16) {
      // Values left exact: likewise, the key side's settings describe the spec.
      spec.value_symmetric.reset();
      spec.value_granularity = spec.key_granularity;
      spec.value_group_size = 0;
    }
  }
  if (spec.scheme == KvScheme::kNone) {
    // Full precision everywhere: nothing else can matter.
    std::string name = std::move(spec.name);
    spec = defaults;
    spec.name = std::move(name);
    return spec;
  }
  const bool int_like = spec.scheme == KvScheme::kInt || spec.scheme == KvScheme::kKivi;
  if (!int_like) spec.bits = fixed_bits(spec.scheme);
  if (spec.scheme != KvScheme::kInt) {
    // kivi fixes its own layout (asymmetric; keys per channel, values per token, both in
    // groups of group_size); fp8 uses one scale per tensor; llama.cpp blocks of 32.
    spec.symmetric = defaults.symmetric;
    spec.value_symmetric.reset();
    spec.key_granularity = defaults.key_granularity;
    spec.value_granularity = defaults.value_granularity;
  }
  if (!int_like || spec.value_bits == spec.bits) spec.value_bits = 0;
  if (spec.value_symmetric && *spec.value_symmetric == spec.symmetric) spec.value_symmetric.reset();
  if (!uses_group_size(spec.scheme, spec.key_granularity, spec.value_granularity, spec.placement)) {
    spec.group_size = 0;
  }
  const bool value_grouped = spec.scheme == KvScheme::kKivi ||
                             (spec.scheme == KvScheme::kInt && spec.value_granularity == Granularity::kPerGroup);
  if (!value_grouped || spec.value_group_size == spec.group_size) spec.value_group_size = 0;
  if (spec.placement == Placement::kProjection) {
    spec.prefill_attention = defaults.prefill_attention;
    spec.pre_rope = false;  // projection outputs are pre-RoPE by construction
  }
  if (!is_fp8(spec.scheme)) spec.fp8_scale = Fp8ScaleSource::kUnit;
  if (!int_like || spec.placement == Placement::kProjection) spec.fp32_scales = false;
  sort_unique(&spec.layers);
  sort_unique(&spec.quantize_channels);
  sort_unique(&spec.outliers.channels);
  if (spec.outliers.explicit_list) {
    spec.outliers.count = 0;
  } else {
    spec.outliers.channels.clear();
  }
  std::vector<KvLayerRule> rules;
  for (KvLayerRule rule : spec.layer_rules) {
    sort_unique(&rule.layers);
    if (rule.scheme == KvScheme::kInt && rule.bits == 16) rule.scheme = KvScheme::kNone;
    if (rule.scheme == KvScheme::kNone) {
      spec.protect_layers.insert(spec.protect_layers.end(), rule.layers.begin(), rule.layers.end());
      continue;
    }
    const bool rule_int_like = rule.scheme == KvScheme::kInt || rule.scheme == KvScheme::kKivi;
    if (!rule_int_like) rule.bits = fixed_bits(rule.scheme);
    if (rule.scheme != KvScheme::kInt) {
      rule.symmetric = false;
      rule.key_granularity = Granularity::kPerToken;
      rule.value_granularity = Granularity::kPerToken;
    }
    if (!uses_group_size(rule.scheme, rule.key_granularity, rule.value_granularity, spec.placement)) {
      rule.group_size = 0;
    }
    rules.push_back(std::move(rule));
  }
  std::sort(rules.begin(), rules.end(),
            [](const KvLayerRule& a, const KvLayerRule& b) { return a.layers.front() < b.layers.front(); });
  spec.layer_rules = std::move(rules);
  sort_unique(&spec.protect_layers);
  return spec;
}

double effective_bits(const KvQuantSpec& input, const EffectiveBitsOptions& options) {
  const KvQuantSpec spec = canonicalize(input);
  if (spec.scheme == KvScheme::kNone) return 16.0;
  const int vbits = spec.value_bits > 0 ? spec.value_bits : spec.bits;
  const bool vsym = spec.value_symmetric.value_or(spec.symmetric);
  const int vgroup = spec.value_group_size > 0 ? spec.value_group_size : spec.group_size;
  double quantized = quantized_bits(spec.scheme, spec.bits, vbits, spec.symmetric, vsym, spec.key_granularity,
                                    spec.value_granularity, spec.group_size, vgroup, spec.fp32_scales, options);
  const double layers = options.layers > 0 ? options.layers : 1;
  // Layers that are not quantized at all: protected ones and those outside `layers`.
  double exact_layers = static_cast<double>(spec.protect_layers.size());
  if (!spec.layers.empty()) {
    std::size_t outside = 0;
    for (int l = 0; l < options.layers; ++l) {
      if (!contains(spec.layers, l) && !contains(spec.protect_layers, l)) ++outside;
    }
    exact_layers += static_cast<double>(outside);
  }
  if (!spec.layer_rules.empty()) {
    // Average the quantized layers' payload over base layers and rule layers.
    const double quantized_layers = std::max(1.0, layers - exact_layers);
    double rule_layers = 0, rule_sum = 0;
    for (const KvLayerRule& r : spec.layer_rules) {
      const double n = static_cast<double>(r.layers.size());
      rule_layers += n;
      rule_sum += n * quantized_bits(r.scheme, r.bits, r.bits, r.symmetric, r.symmetric, r.key_granularity,
                                     r.value_granularity, r.group_size, r.group_size, spec.fp32_scales, options);
    }
    rule_layers = std::min(rule_layers, quantized_layers);
    quantized = ((quantized_layers - rule_layers) * quantized + rule_sum) / quantized_layers;
  }
  // Fractions of elements kept exact, assumed independent.
  const double f_layers = std::min(1.0, exact_layers / layers);
  const double f_residual = std::min(1.0, static_cast<double>(spec.residual) / options.context_tokens);
  const double f_outliers = std::min(1.0, static_cast<double>(spec.outliers.kept()) / options.head_dim);
  const double kept = 1.0 - (1.0 - f_layers) * (1.0 - f_residual) * (1.0 - f_outliers);
  return (1.0 - kept) * quantized + kept * 16.0;
}

KvSideSpec resolve_side(const KvQuantSpec& input, KvSide side, int layer) {
  check_kv_spec(input);
  const KvQuantSpec spec = canonicalize(input);
  KvSideSpec out;
  out.placement = spec.placement;
  if (spec.scheme == KvScheme::kNone || contains(spec.protect_layers, layer) ||
      (!spec.layers.empty() && !contains(spec.layers, layer))) {
    return out;  // exact
  }
  KvScheme scheme = spec.scheme;
  int bits = spec.bits;
  int vbits = spec.value_bits > 0 ? spec.value_bits : spec.bits;
  bool sym = spec.symmetric;
  bool vsym = spec.value_symmetric.value_or(spec.symmetric);
  Granularity kg = spec.key_granularity, vg = spec.value_granularity;
  int group = spec.group_size;
  int vgroup = spec.value_group_size > 0 ? spec.value_group_size : spec.group_size;
  for (const KvLayerRule& rule : spec.layer_rules) {
    if (!contains(rule.layers, layer)) continue;
    scheme = rule.scheme;
    bits = vbits = rule.bits;
    sym = vsym = rule.symmetric;
    kg = rule.key_granularity;
    vg = rule.value_granularity;
    group = vgroup = rule.group_size;
  }
  const bool keys = side == KvSide::kKey;
  out.scheme = scheme;
  out.bits = keys ? bits : vbits;
  out.symmetric = keys ? sym : vsym;
  out.granularity = keys ? kg : vg;
  out.group_size = keys ? group : vgroup;
  out.residual = spec.residual;
  out.fp8_scale = spec.fp8_scale;
  out.fp32_scales = spec.fp32_scales;
  out.pre_rope = keys && spec.pre_rope;
  out.outliers = spec.outliers;
  out.quantize_channels = spec.quantize_channels;
  if (scheme == KvScheme::kInt && out.bits == 16) {
    out = KvSideSpec{};  // this side left exact (keys-only or values-only quantization)
    out.placement = spec.placement;
    return out;
  }
  if (scheme == KvScheme::kKivi) {
    // KIVI: keys per channel (grouped over G tokens in the cache), values in groups of G
    // channels; asymmetric. With placement projection this is the paper's KVQuantizerDual.
    out.symmetric = false;
    out.granularity = keys ? Granularity::kPerChannel : Granularity::kPerGroup;
    if (spec.placement == Placement::kProjection) out.scheme = KvScheme::kInt;
  }
  // NOTE: the paper's single-token fallback exists only in KVQuantizerDual, i.e. when keys
  // and values are configured differently (its KIVI); the plain quantizer has none.
  if (spec.placement == Placement::kProjection && keys && out.granularity == Granularity::kPerChannel &&
      (scheme == KvScheme::kKivi || kg != vg)) {
    out.single_token_per_token = true;
  }
  if (is_llama_cpp(scheme)) out.group_size = 32;
  return out;
}

}  // namespace kvsafe::kernels
