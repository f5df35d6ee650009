#include "orchestrator/kv_spec.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace kvsafe::orchestrator {
namespace {

void sort_unique(std::vector<int>* values) {
  std::sort(values->begin(), values->end());
  values->erase(std::unique(values->begin(), values->end()), values->end());
}

bool is_int_like(KvScheme s) {
  return s == KvScheme::kInt || s == KvScheme::kKivi;
}

std::string granularity_tag(Granularity g, int group_size) {
  switch (g) {
    case Granularity::kPerToken:
      return "ptok";
    case Granularity::kPerChannel:
      return "pchan";
    case Granularity::kPerTensor:
      return "ptensor";
    case Granularity::kPerGroup:
      return "g" + std::to_string(group_size);
  }
  return "?";
}

std::string int_list(const std::vector<int>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  return out + "]";
}

// fp16 scale (+ fp16 zero point when asymmetric) per statistics group, per element.
double scale_overhead(Granularity g, bool symmetric, int group_size, const EffectiveBitsOptions& o) {
  const double per_group_bits = symmetric ? 16.0 : 32.0;
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

std::optional<KvScheme> parse_kv_scheme(std::string_view text) {
  for (KvScheme s : {KvScheme::kNone, KvScheme::kInt, KvScheme::kFp8E4M3, KvScheme::kFp8E5M2, KvScheme::kKivi}) {
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

KvSpec canonicalize(KvSpec spec) {
  if (spec.scheme == KvScheme::kInt && spec.bits == 16) spec.scheme = KvScheme::kNone;
  const KvSpec defaults;
  if (spec.scheme == KvScheme::kNone) {
    // Full precision everywhere: nothing else can matter.
    std::string name = std::move(spec.name);
    spec = defaults;
    spec.name = std::move(name);
    return spec;
  }
  if (!is_int_like(spec.scheme)) spec.bits = 8;  // fp8 formats
  if (spec.scheme != KvScheme::kInt) {
    // kivi fixes its own layout (asymmetric; keys per channel, values per token, both in
    // groups of group_size); fp8 uses one scale per tensor.
    spec.symmetric = defaults.symmetric;
    spec.key_granularity = defaults.key_granularity;
    spec.value_granularity = defaults.value_granularity;
  }
  const bool uses_group = spec.scheme == KvScheme::kKivi ||
                          (spec.scheme == KvScheme::kInt && (spec.key_granularity == Granularity::kPerGroup ||
                                                             spec.value_granularity == Granularity::kPerGroup));
  if (!uses_group) spec.group_size = 0;
  if (spec.placement == Placement::kProjection) spec.prefill_attention = defaults.prefill_attention;
  sort_unique(&spec.protect_layers);
  sort_unique(&spec.outliers.channels);
  if (spec.outliers.explicit_list) {
    spec.outliers.count = 0;
  } else {
    spec.outliers.channels.clear();
  }
  return spec;
}

std::string canonical_json(const KvSpec& input) {
  const KvSpec spec = canonicalize(input);
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
  return j.dump();  // nlohmann objects are std::map-ordered: keys come out sorted
}

std::string kv_label(const KvSpec& input) {
  if (!input.name.empty()) return input.name;
  const KvSpec spec = canonicalize(input);
  std::string label;
  switch (spec.scheme) {
    case KvScheme::kNone:
      return "none";
    case KvScheme::kFp8E4M3:
      label = "fp8e4m3";
      break;
    case KvScheme::kFp8E5M2:
      label = "fp8e5m2";
      break;
    case KvScheme::kKivi:
      label = "kivi" + std::to_string(spec.bits);
      if (spec.group_size != 32) label += "-g" + std::to_string(spec.group_size);
      break;
    case KvScheme::kInt: {
      label = "int" + std::to_string(spec.bits) + "-";
      if (spec.key_granularity == spec.value_granularity) {
        label += granularity_tag(spec.key_granularity, spec.group_size);
      } else {
        label += "k" + granularity_tag(spec.key_granularity, spec.group_size) + "-v" +
                 granularity_tag(spec.value_granularity, spec.group_size);
      }
      label += spec.symmetric ? "-sym" : "-asym";
      break;
    }
  }
  // KIVI always names its window (`kivi2-r128`, also `-r0`); other schemes only when set.
  if (spec.scheme == KvScheme::kKivi || spec.residual > 0) label += "-r" + std::to_string(spec.residual);
  if (spec.placement == Placement::kCache) {
    label += "-cache";
    if (spec.prefill_attention == PrefillAttention::kQuantized) label += "-qprefill";
  }
  if (!spec.protect_layers.empty()) label += "+fp16" + int_list(spec.protect_layers);
  if (spec.outliers.explicit_list) {
    label += "+out" + int_list(spec.outliers.channels);
  } else if (spec.outliers.count > 0) {
    label += "+out" + std::to_string(spec.outliers.count);
  }
  return label;
}

double effective_bits(const KvSpec& input, const EffectiveBitsOptions& options) {
  const KvSpec spec = canonicalize(input);
  if (spec.scheme == KvScheme::kNone) return 16.0;
  double quantized = spec.bits;
  if (spec.scheme == KvScheme::kInt) {
    // Half the elements are keys, half values.
    quantized += 0.5 * scale_overhead(spec.key_granularity, spec.symmetric, spec.group_size, options) +
                 0.5 * scale_overhead(spec.value_granularity, spec.symmetric, spec.group_size, options);
  } else if (spec.scheme == KvScheme::kKivi) {
    // KIVI: fp16 scale and min per group of group_size (keys along tokens, values along channels).
    quantized += 32.0 / spec.group_size;
  }
  // Fractions of elements kept exact, assumed independent.
  const double layers = options.layers > 0 ? options.layers : 1;
  const double f_layers = std::min(1.0, static_cast<double>(spec.protect_layers.size()) / layers);
  const double f_residual = std::min(1.0, static_cast<double>(spec.residual) / options.context_tokens);
  const double f_outliers = std::min(1.0, static_cast<double>(spec.outliers.kept()) / options.head_dim);
  const double kept = 1.0 - (1.0 - f_layers) * (1.0 - f_residual) * (1.0 - f_outliers);
  return (1.0 - kept) * quantized + kept * 16.0;
}

}  // namespace kvsafe::orchestrator
