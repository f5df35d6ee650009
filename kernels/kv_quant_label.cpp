// KvQuantSpec <-> short label (grammar in kv_quant_spec.h, kv_label()).

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/kv_quant_spec.h"

namespace kvsafe::kernels {
namespace {

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

// The quantizer part of a label: `int4-ptok-asym`, `kivi2`, `fp8e4m3`, `q4_0`.
std::string quantizer_label(KvScheme scheme, int bits, int value_bits, bool symmetric,
                            std::optional<bool> value_symmetric, Granularity kg, Granularity vg, int group,
                            int value_group) {
  switch (scheme) {
    case KvScheme::kNone:
      return "fp16";
    case KvScheme::kFp8E4M3:
      return "fp8e4m3";
    case KvScheme::kFp8E5M2:
      return "fp8e5m2";
    case KvScheme::kKivi: {
      std::string label = "kivi" + std::to_string(bits);
      if (value_bits > 0) label += "v" + std::to_string(value_bits);
      if (group != kKiviDefaultGroupSize) label += "-g" + std::to_string(group);
      if (value_group > 0) label += "-vg" + std::to_string(value_group);
      return label;
    }
    case KvScheme::kInt: {
      std::string label = "int" + std::to_string(bits);
      if (value_bits > 0) label += "v" + std::to_string(value_bits);
      label += "-";
      const int vgroup = value_group > 0 ? value_group : group;
      const std::string ktag = granularity_tag(kg, group), vtag = granularity_tag(vg, vgroup);
      label += ktag == vtag ? ktag : "k" + ktag + "-v" + vtag;
      label += symmetric ? "-sym" : "-asym";
      if (value_symmetric) label += *value_symmetric ? "-vsym" : "-vasym";
      return label;
    }
    default:
      return std::string(to_string(scheme));  // q8_0, q4_0, ...
  }
}

[[noreturn]] void fail(std::string_view label, const std::string& why) {
  throw InputError("cannot read KV label `" + std::string(label) + "`: " + why +
                   " (examples: int4-ptok-asym, int3-ptensor-sym, int4-g64-sym, kivi2-r128, fp8e5m2, q4_0, "
                   "int4-ptok-asym+fp16[0,2])");
}

int to_int(std::string_view label, std::string_view text, const char* what) {
  int value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    fail(label, std::string("expected a number for ") + what + ", got `" + std::string(text) + "`");
  }
  return value;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// `[0,2,10-15]` -> {0, 2, 10, ..., 15}.
std::vector<int> parse_list(std::string_view label, std::string_view text) {
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') fail(label, "expected a [list]");
  std::vector<int> out;
  std::string_view body = text.substr(1, text.size() - 2);
  while (!body.empty()) {
    const std::size_t comma = body.find(',');
    std::string_view item = body.substr(0, comma);
    const std::size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      out.push_back(to_int(label, item, "a list item"));
    } else {
      const int lo = to_int(label, item.substr(0, dash), "a range start");
      const int hi = to_int(label, item.substr(dash + 1), "a range end");
      if (hi < lo || hi - lo > 100000) fail(label, "bad range `" + std::string(item) + "`");
      for (int v = lo; v <= hi; ++v) out.push_back(v);
    }
    if (comma == std::string_view::npos) break;
    body.remove_prefix(comma + 1);
  }
  return out;
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  std::size_t depth = 0, start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '[') ++depth;
    if (text[i] == ']' && depth > 0) --depth;
    if (text[i] == sep && depth == 0) {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(text.substr(start));
  return out;
}

std::optional<std::pair<Granularity, int>> parse_tag(std::string_view label, std::string_view tag) {
  if (tag == "ptok") return std::pair{Granularity::kPerToken, 0};
  if (tag == "pchan") return std::pair{Granularity::kPerChannel, 0};
  if (tag == "ptensor") return std::pair{Granularity::kPerTensor, 0};
  if (tag.size() > 1 && tag[0] == 'g' && std::isdigit(static_cast<unsigned char>(tag[1]))) {
    return std::pair{Granularity::kPerGroup, to_int(label, tag.substr(1), "a group size")};
  }
  return std::nullopt;
}

// Parses the quantizer part (tokens split at '-'); consumes what it reads from `tokens`.
KvLayerRule parse_quantizer(std::string_view label, std::vector<std::string_view>* tokens, KvQuantSpec* spec) {
  KvLayerRule q;
  std::string_view head = tokens->front();
  tokens->erase(tokens->begin());
  const auto read_bits = [&](std::string_view rest) {
    const std::size_t v = rest.find('v');
    q.bits = to_int(label, rest.substr(0, v), "bits");
    if (v != std::string_view::npos) {
      if (spec == nullptr) fail(label, "a layer rule takes one bit width");
      spec->value_bits = to_int(label, rest.substr(v + 1), "value bits");
    }
  };
  if (head == "fp16" || head == "none") {
    q.scheme = KvScheme::kNone;
  } else if (head == "fp8e4m3" || head == "fp8e5m2") {
    q.scheme = head == "fp8e4m3" ? KvScheme::kFp8E4M3 : KvScheme::kFp8E5M2;
  } else if (auto scheme = parse_kv_scheme(head); scheme && is_llama_cpp(*scheme)) {
    q.scheme = *scheme;
  } else if (starts_with(head, "kivi")) {
    q.scheme = KvScheme::kKivi;
    read_bits(head.substr(4));
    q.group_size = kKiviDefaultGroupSize;
    while (!tokens->empty() && starts_with(tokens->front(), "g") && tokens->front().size() > 1 &&
           std::isdigit(static_cast<unsigned char>(tokens->front()[1]))) {
      q.group_size = to_int(label, tokens->front().substr(1), "a group size");
      tokens->erase(tokens->begin());
    }
    if (!tokens->empty() && starts_with(tokens->front(), "vg")) {
      if (spec == nullptr) fail(label, "a layer rule takes one group size");
      spec->value_group_size = to_int(label, tokens->front().substr(2), "a value group size");
      tokens->erase(tokens->begin());
    }
  } else if (starts_with(head, "int")) {
    q.scheme = KvScheme::kInt;
    read_bits(head.substr(3));
    if (tokens->empty()) fail(label, "missing granularity after `" + std::string(head) + "`");
    std::string_view tag = tokens->front();
    tokens->erase(tokens->begin());
    if (auto g = parse_tag(label, tag)) {
      q.key_granularity = q.value_granularity = g->first;
      q.group_size = g->second;
    } else if (tag.size() > 1 && tag[0] == 'k') {
      auto kg = parse_tag(label, tag.substr(1));
      if (!kg || tokens->empty() || tokens->front().size() < 2 || tokens->front()[0] != 'v') {
        fail(label, "expected k<granularity>-v<granularity>, got `" + std::string(tag) + "`");
      }
      auto vg = parse_tag(label, tokens->front().substr(1));
      if (!vg) fail(label, "unknown value granularity `" + std::string(tokens->front()) + "`");
      tokens->erase(tokens->begin());
      q.key_granularity = kg->first;
      q.value_granularity = vg->first;
      q.group_size = kg->second > 0 ? kg->second : vg->second;
      if (kg->second > 0 && vg->second > 0 && vg->second != kg->second) {
        if (spec == nullptr) fail(label, "a layer rule takes one group size");
        spec->value_group_size = vg->second;
      }
    } else {
      fail(label, "unknown granularity `" + std::string(tag) + "` (ptok, pchan, ptensor, g<N>, k..-v..)");
    }
    if (tokens->empty() || (tokens->front() != "sym" && tokens->front() != "asym")) {
      fail(label, "expected -sym or -asym after the granularity");
    }
    q.symmetric = tokens->front() == "sym";
    tokens->erase(tokens->begin());
    if (!tokens->empty() && (tokens->front() == "vsym" || tokens->front() == "vasym")) {
      if (spec == nullptr) fail(label, "a layer rule takes one symmetry");
      spec->value_symmetric = tokens->front() == "vsym";
      tokens->erase(tokens->begin());
    }
  } else {
    fail(label, "unknown scheme `" + std::string(head) + "`");
  }
  return q;
}

}  // namespace

std::string kv_label(const KvQuantSpec& input) {
  if (!input.name.empty()) return input.name;
  const KvQuantSpec spec = canonicalize(input);
  if (spec.scheme == KvScheme::kNone) return "none";
  std::string label =
      quantizer_label(spec.scheme, spec.bits, spec.value_bits, spec.symmetric, spec.value_symmetric,
                      spec.key_granularity, spec.value_granularity, spec.group_size, spec.value_group_size);
  // KIVI always names its window (`kivi2-r128`, also `-r0`); other schemes only when set.
  if (spec.scheme == KvScheme::kKivi || spec.residual > 0) label += "-r" + std::to_string(spec.residual);
  if (spec.fp8_scale == Fp8ScaleSource::kCalibrated) label += "-cal";
  if (spec.placement == Placement::kCache) {
    label += "-cache";
    if (spec.prefill_attention == PrefillAttention::kQuantized) label += "-qprefill";
    if (spec.pre_rope) label += "-prerope";
    if (spec.fp32_scales) label += "-fp32s";
  }
  if (!spec.layers.empty()) label += "@" + int_list(spec.layers);
  if (!spec.protect_layers.empty()) label += "+fp16" + int_list(spec.protect_layers);
  for (const KvLayerRule& r : spec.layer_rules) {
    label += "+" +
             quantizer_label(r.scheme, r.bits, 0, r.symmetric, std::nullopt, r.key_granularity, r.value_granularity,
                             r.group_size, 0) +
             int_list(r.layers);
  }
  if (spec.outliers.explicit_list) {
    label += "+out" + int_list(spec.outliers.channels);
  } else if (spec.outliers.count > 0) {
    label += "+out" + std::to_string(spec.outliers.count);
  }
  if (!spec.quantize_channels.empty()) label += "+ch" + int_list(spec.quantize_channels);
  return label;
}

KvLayerRule parse_kv_layer_rule(std::string_view text) {
  const std::size_t bracket = text.find('[');
  if (bracket == std::string_view::npos || bracket == 0) fail(text, "a layer rule is <quantizer>[layers]");
  std::vector<std::string_view> tokens = split(text.substr(0, bracket), '-');
  KvLayerRule rule = parse_quantizer(text, &tokens, nullptr);
  if (!tokens.empty()) fail(text, "unexpected `" + std::string(tokens.front()) + "` in a layer rule");
  rule.layers = parse_list(text, text.substr(bracket));
  if (rule.scheme == KvScheme::kNone) rule.bits = 16;
  return rule;
}

KvQuantSpec parse_kv_label(std::string_view label) {
  if (label.empty()) fail(label, "empty label");
  const std::vector<std::string_view> parts = split(label, '+');
  std::string_view base = parts[0];
  KvQuantSpec spec;
  // `@[layers]` closes the base part.
  if (const std::size_t at = base.find('@'); at != std::string_view::npos) {
    spec.layers = parse_list(label, base.substr(at + 1));
    base = base.substr(0, at);
  }
  std::vector<std::string_view> tokens = split(base, '-');
  const KvLayerRule q = parse_quantizer(label, &tokens, &spec);
  spec.scheme = q.scheme;
  spec.bits = q.scheme == KvScheme::kNone ? 16 : q.bits;
  spec.symmetric = q.symmetric;
  spec.key_granularity = q.key_granularity;
  spec.value_granularity = q.value_granularity;
  spec.group_size = q.group_size;
  if (spec.scheme == KvScheme::kKivi) spec.residual = kKiviDefaultResidual;  // unless -r says
  for (std::string_view t : tokens) {
    if (t.size() > 1 && t[0] == 'r' && std::isdigit(static_cast<unsigned char>(t[1]))) {
      spec.residual = to_int(label, t.substr(1), "the residual window");
    } else if (t == "cal") {
      spec.fp8_scale = Fp8ScaleSource::kCalibrated;
    } else if (t == "cache") {
      spec.placement = Placement::kCache;
    } else if (t == "qprefill") {
      spec.prefill_attention = PrefillAttention::kQuantized;
    } else if (t == "prerope") {
      spec.pre_rope = true;
    } else if (t == "fp32s") {
      spec.fp32_scales = true;
    } else {
      fail(label, "unknown part `" + std::string(t) + "`");
    }
  }
  for (std::size_t i = 1; i < parts.size(); ++i) {
    std::string_view extra = parts[i];
    const std::size_t bracket = extra.find('[');
    std::string_view head = extra.substr(0, bracket);
    if (starts_with(extra, "out")) {
      if (bracket == 3) {
        spec.outliers.explicit_list = true;
        spec.outliers.channels = parse_list(label, extra.substr(3));
      } else {
        spec.outliers.count = to_int(label, extra.substr(3), "the outlier count");
      }
      continue;
    }
    if (bracket == std::string_view::npos) fail(label, "`+" + std::string(extra) + "` needs a [layer list]");
    if (head == "ch") {
      spec.quantize_channels = parse_list(label, extra.substr(bracket));
      continue;
    }
    KvLayerRule rule = parse_kv_layer_rule(extra);
    if (rule.scheme == KvScheme::kNone) {
      spec.protect_layers.insert(spec.protect_layers.end(), rule.layers.begin(), rule.layers.end());
    } else {
      spec.layer_rules.push_back(std::move(rule));
    }
  }
  const auto problems = validate_kv_spec(spec);
  if (!problems.empty()) fail(label, problems[0].key + ": " + problems[0].message);
  return canonicalize(spec);
}

}  // namespace kvsafe::kernels
