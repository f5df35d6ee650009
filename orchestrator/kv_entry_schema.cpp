// The `kv_cache` section: the key table of a quantizer entry, its value checks, sweeps
// (a list value crosses with the entry's other lists), zip (lists that vary together)
// and the cross-key rules. Each entry expands into canonical KvSpecs; duplicates across
// the whole section (e.g. `int` bits 16 and `none`) are dropped.

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "orchestrator/grid_parser_internal.h"

namespace kvsafe::orchestrator::detail {
namespace {

// Keys whose values may sweep, in the order they cross: the KV spec's JSON keys
// (kernels/kv_quant_spec.h, the one list) with the grid's `granularity` (both sides at once)
// after `symmetric`, where the original grid language had it.
const std::vector<std::string_view>& sweep_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> out;
    for (std::string_view key : kernels::kv_spec_json_keys()) {
      out.push_back(key);
      if (key == "symmetric") out.push_back("granularity");
    }
    return out;
  }();
  return keys;
}

// Every key a kv_cache entry accepts: the sweep keys, its `name` label and `zip`.
const std::vector<std::string_view>& entry_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> out = sweep_keys();
    out.push_back("name");
    out.push_back("zip");
    return out;
  }();
  return keys;
}
// List-valued keys: a list is one value, a list of lists a sweep.
constexpr std::array<std::string_view, 5> kListKeys = {"protect_layers", "outlier_channels", "layers",
                                                       "quantize_channels", "layer_rules"};
constexpr std::array<std::string_view, 2> kFp8Scales = {"unit", "calibrated"};
constexpr std::array<std::string_view, 4> kGranularities = {"per_token", "per_channel", "per_group", "per_tensor"};
constexpr std::array<std::string_view, 2> kPlacements = {"projection", "cache"};
constexpr std::array<std::string_view, 2> kPrefill = {"exact", "quantized"};

// More specs than any real grid needs from one entry (the paper's whole grid has 14).
constexpr std::size_t kMaxEntryCombinations = 100'000;

// One value of a key (a scalar key has one, a swept key several).
struct Alt {
  std::int64_t number = 0;
  bool flag = false;
  std::string text;
  std::vector<int> ids;
  bool is_list = false;                     // outlier_channels: explicit ids rather than a count
  std::vector<kernels::KvLayerRule> rules;  // layer_rules
  SourceLocation where;
  std::string path;
};

struct Axis {
  std::string key;
  bool sweep = false;
  std::vector<Alt> alts;
  SourceLocation where;  // the key's value
  std::string path;
};

bool is_sequence_of_sequences(const YAML::Node& node) {
  if (!node.IsSequence()) return false;
  for (const YAML::Node& item : node) {
    if (item.IsSequence()) return true;
  }
  return false;
}

class EntryParser {
 public:
  EntryParser(ParseContext& ctx, const GridSpec& grid) : r_(ctx.reader), grid_(grid) {}

  // Expands entry `index` into canonical specs (not yet deduplicated across entries).
  std::vector<KvSpec> parse(const YAML::Node& node, SourceLocation where, const std::string& path) {
    const auto view = r_.map(node, where, path, entry_keys());
    if (!view) return {};
    entry_path_ = path;
    entry_where_ = view->where;
    if (!r_.require(*view, "scheme")) return {};

    std::vector<Axis> axes;
    bool ok = true;
    for (std::string_view key : sweep_keys()) {
      const MapEntry* e = view->find(key);
      if (e == nullptr) continue;
      std::optional<Axis> axis = read_axis(*e);
      if (!axis) {
        ok = false;
        continue;
      }
      axes.push_back(std::move(*axis));
    }
    std::string name;
    if (const MapEntry* e = view->find("name")) {
      if (auto text = r_.string(*e, false)) {
        if (!is_label(*text)) {
          r_.error(e->where, e->path, "name `" + *text + "` may only use letters, digits and _ . - + [ ] , @");
          ok = false;
        }
        name = *text;
        name_where_ = e->where;
      } else {
        ok = false;
      }
    }
    std::vector<std::vector<std::size_t>> groups;  // zip groups, as indices into axes
    if (const MapEntry* e = view->find("zip")) {
      if (!read_zip(*e, axes, &groups)) ok = false;
    }
    if (!ok) return {};
    return combine(axes, groups, name);
  }

 private:
  static bool is_label(const std::string& text) {
    if (text.empty()) return false;
    return std::all_of(text.begin(), text.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) ||
             std::string_view("_.-+[],@").find(c) != std::string_view::npos;
    });
  }

  // Reads one key: a scalar is one alternative, a list (or a list of lists for the
  // list-valued keys) a sweep.
  std::optional<Axis> read_axis(const MapEntry& e) {
    Axis axis{e.key, false, {}, e.where, e.path};
    const bool list_valued = std::find(kListKeys.begin(), kListKeys.end(), e.key) != kListKeys.end();
    const bool must_be_list = list_valued && e.key != "outlier_channels";
    if (must_be_list && !e.value.IsSequence()) {
      r_.error(e.where, e.path,
               e.key == "layer_rules"
                   ? "expected a list of layer rules (e.g. [int8-ptok-asym[10-15]]), got " + describe(e.value)
                   : "expected a list of " +
                         std::string(e.key == "quantize_channels" ? "channel ids" : "layer indices") +
                         " (e.g. [0, 2]), got " + describe(e.value));
      return std::nullopt;
    }
    axis.sweep = list_valued ? is_sequence_of_sequences(e.value) : e.value.IsSequence();
    if (!axis.sweep) {
      std::optional<Alt> alt = read_value(e.key, e.value, e.where, e.path);
      if (!alt) return std::nullopt;
      axis.alts.push_back(std::move(*alt));
      return axis;
    }
    if (e.value.size() == 0) {
      r_.error(e.where, e.path, "an empty list sweeps nothing; give at least one value");
      return std::nullopt;
    }
    bool ok = true;
    std::size_t i = 0;
    for (const YAML::Node& item : e.value) {
      const std::string item_path = element(e.path, i++);
      const SourceLocation item_where = location_of(item, e.where);
      if (must_be_list && !item.IsSequence()) {
        r_.error(item_where, item_path,
                 "a " + e.key + " sweep is a list of lists (e.g. [[0], [0, 2]]); got " + describe(item));
        ok = false;
        continue;
      }
      std::optional<Alt> alt = read_value(e.key, item, item_where, item_path);
      if (!alt) {
        ok = false;
        continue;
      }
      axis.alts.push_back(std::move(*alt));
    }
    if (!ok) return std::nullopt;
    return axis;
  }

  std::optional<Alt> read_value(const std::string& key, const YAML::Node& node, SourceLocation where,
                                const std::string& path) {
    Alt alt;
    alt.where = where;
    alt.path = path;
    if (key == "scheme" || key == "granularity" || key == "key_granularity" || key == "value_granularity" ||
        key == "placement" || key == "prefill_attention" || key == "fp8_scale") {
      std::span<const std::string_view> choices = kernels::kv_scheme_names();
      if (key == "placement") choices = kPlacements;
      if (key == "prefill_attention") choices = kPrefill;
      if (key == "fp8_scale") choices = kFp8Scales;
      if (key.find("granularity") != std::string::npos) choices = kGranularities;
      auto text = r_.choice(node, where, path, choices);
      if (!text) return std::nullopt;
      alt.text = *text;
      return alt;
    }
    if (key == "bits" || key == "value_bits") {
      // NOTE: the range is kernels::validate_kv_spec's rule, checked per combination.
      auto bits = r_.integer(node, where, path, -1000, 1000);
      if (!bits) return std::nullopt;
      alt.number = *bits;
      return alt;
    }
    if (key == "symmetric" || key == "value_symmetric" || key == "pre_rope" || key == "fp32_scales") {
      auto flag = r_.boolean(node, where, path);
      if (!flag) return std::nullopt;
      alt.flag = *flag;
      return alt;
    }
    if (key == "group_size" || key == "value_group_size") {
      auto size = r_.integer(node, where, path, 2, 4096);
      if (!size) return std::nullopt;
      const bool power_of_two = (*size & (*size - 1)) == 0;
      if (!power_of_two || *size < 16 || *size > 1024) {
        r_.warning(where, path,
                   "group_size " + std::to_string(*size) + " is unusual; kernels are tuned for powers of two 16..1024");
      }
      alt.number = *size;
      return alt;
    }
    if (key == "residual") {
      auto residual = r_.integer(node, where, path, 0, 1 << 20);
      if (!residual) return std::nullopt;
      alt.number = *residual;
      return alt;
    }
    if (key == "protect_layers" || key == "layers") return read_layers(node, where, path, alt);
    if (key == "quantize_channels") return read_ids(node, where, path, alt);
    if (key == "layer_rules") return read_rules(node, where, path, alt);
    // outlier_channels: a count, or an explicit list of channel ids.
    if (node.IsSequence()) {
      alt.is_list = true;
      std::size_t i = 0;
      bool ok = true;
      for (const YAML::Node& item : node) {
        const std::string item_path = element(path, i++);
        auto id = r_.integer(item, location_of(item, where), item_path, 0, 1 << 20);
        if (!id) {
          ok = false;
          continue;
        }
        alt.ids.push_back(static_cast<int>(*id));
      }
      if (!ok) return std::nullopt;
      return alt;
    }
    if (!node.IsScalar() || scalar_kind(node) != ScalarKind::kInt) {
      r_.error(where, path, "expected a channel count or a list of channel ids, got " + describe(node));
      return std::nullopt;
    }
    auto count = r_.integer(node, where, path, 0, 1 << 20);
    if (!count) return std::nullopt;
    alt.number = *count;
    return alt;
  }

  std::optional<Alt> read_ids(const YAML::Node& node, SourceLocation where, const std::string& path, Alt alt) {
    bool ok = true;
    std::size_t i = 0;
    for (const YAML::Node& item : node) {
      const std::string item_path = element(path, i++);
      auto id = r_.integer(item, location_of(item, where), item_path, 0, 1 << 20);
      if (!id) {
        ok = false;
        continue;
      }
      alt.ids.push_back(static_cast<int>(*id));
    }
    if (!ok) return std::nullopt;
    return alt;
  }

  // layer_rules: label-syntax strings, `int8-ptok-asym[10-15]`, `fp16[0,2]`, `q8_0[3]`.
  std::optional<Alt> read_rules(const YAML::Node& node, SourceLocation where, const std::string& path, Alt alt) {
    bool ok = true;
    std::size_t i = 0;
    for (const YAML::Node& item : node) {
      const std::string item_path = element(path, i++);
      const SourceLocation item_where = location_of(item, where);
      auto text = r_.string(item, item_where, item_path, false);
      if (!text) {
        ok = false;
        continue;
      }
      try {
        alt.rules.push_back(kernels::parse_kv_layer_rule(*text));
      } catch (const InputError& e) {
        r_.error(item_where, item_path, e.what());
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return alt;
  }

  std::optional<Alt> read_layers(const YAML::Node& node, SourceLocation where, const std::string& path, Alt alt) {
    if (!node.IsSequence()) {
      r_.error(where, path, "expected a list of layer indices, got " + describe(node));
      return std::nullopt;
    }
    bool ok = true;
    std::size_t i = 0;
    for (const YAML::Node& item : node) {
      const std::string item_path = element(path, i++);
      const SourceLocation item_where = location_of(item, where);
      auto layer = r_.integer(item, item_where, item_path, 0, 100000);
      if (!layer) {
        ok = false;
        continue;
      }
      for (const ModelSpec& model : grid_.models) {
        if (model.layers && *layer >= *model.layers) {
          r_.error(item_where, item_path,
                   "layer " + std::to_string(*layer) + " does not exist in model `" + model.name + "` (" +
                       std::to_string(*model.layers) + " layers, numbered from 0)");
          ok = false;
        }
      }
      alt.ids.push_back(static_cast<int>(*layer));
    }
    if (!ok) return std::nullopt;
    return alt;
  }

  // zip: [a, b] (one group) or [[a, b], [c, d]] (several).
  bool read_zip(const MapEntry& e, const std::vector<Axis>& axes, std::vector<std::vector<std::size_t>>* groups) {
    if (!e.value.IsSequence()) {
      r_.error(e.where, e.path, "expected a list of keys (e.g. [bits, residual]), got " + describe(e.value));
      return false;
    }
    std::vector<std::pair<YAML::Node, std::string>> group_nodes;
    if (is_sequence_of_sequences(e.value)) {
      std::size_t i = 0;
      for (const YAML::Node& g : e.value) group_nodes.emplace_back(g, element(e.path, i++));
    } else {
      group_nodes.emplace_back(e.value, e.path);
    }
    bool ok = true;
    std::set<std::string> used;
    for (const auto& [group_node, group_path] : group_nodes) {
      const SourceLocation group_where = location_of(group_node, e.where);
      if (!group_node.IsSequence()) {
        r_.error(group_where, group_path, "expected a list of keys, got " + describe(group_node));
        ok = false;
        continue;
      }
      std::vector<std::size_t> group;
      std::size_t i = 0;
      for (const YAML::Node& item : group_node) {
        const std::string item_path = element(group_path, i++);
        const SourceLocation item_where = location_of(item, group_where);
        auto key = r_.string(item, item_where, item_path, false);
        if (!key) {
          ok = false;
          continue;
        }
        const auto& sweepable = sweep_keys();
        if (std::find(sweepable.begin(), sweepable.end(), *key) == sweepable.end()) {
          r_.error(item_where, item_path, "zip names unknown key `" + *key + "`" + did_you_mean(*key, sweepable));
          ok = false;
          continue;
        }
        const auto axis = std::find_if(axes.begin(), axes.end(), [&](const Axis& a) { return a.key == *key; });
        if (axis == axes.end()) {
          r_.error(item_where, item_path, "zip names `" + *key + "`, which this entry does not set");
          ok = false;
          continue;
        }
        if (!axis->sweep) {
          r_.error(item_where, item_path, "zip key `" + *key + "` is not a list; zip pairs up list values");
          ok = false;
          continue;
        }
        if (!used.insert(*key).second) {
          r_.error(item_where, item_path, "zip names `" + *key + "` twice");
          ok = false;
          continue;
        }
        group.push_back(static_cast<std::size_t>(axis - axes.begin()));
      }
      for (std::size_t k = 1; k < group.size(); ++k) {
        const Axis& first = axes[group[0]];
        const Axis& other = axes[group[k]];
        if (first.alts.size() != other.alts.size()) {
          r_.error(group_where, group_path,
                   "zip lists have unequal lengths: " + first.key + " has " + std::to_string(first.alts.size()) +
                       " values, " + other.key + " has " + std::to_string(other.alts.size()));
          ok = false;
        }
      }
      if (!group.empty()) groups->push_back(std::move(group));
    }
    return ok;
  }

  static void apply(const Axis& axis, const Alt& alt, KvSpec* spec, std::set<std::string>* set_keys) {
    const std::string& k = axis.key;
    set_keys->insert(k);
    if (k == "scheme") spec->scheme = *parse_kv_scheme(alt.text);
    if (k == "bits") spec->bits = static_cast<int>(alt.number);
    if (k == "symmetric") spec->symmetric = alt.flag;
    if (k == "granularity") {
      // key_/value_granularity override the shared one whatever their order in the file.
      if (!set_keys->count("key_granularity")) spec->key_granularity = *parse_granularity(alt.text);
      if (!set_keys->count("value_granularity")) spec->value_granularity = *parse_granularity(alt.text);
    }
    if (k == "key_granularity") spec->key_granularity = *parse_granularity(alt.text);
    if (k == "value_granularity") spec->value_granularity = *parse_granularity(alt.text);
    if (k == "group_size") spec->group_size = static_cast<int>(alt.number);
    if (k == "placement") spec->placement = *parse_placement(alt.text);
    if (k == "prefill_attention") spec->prefill_attention = *parse_prefill_attention(alt.text);
    if (k == "residual") spec->residual = static_cast<int>(alt.number);
    if (k == "protect_layers") spec->protect_layers = alt.ids;
    if (k == "value_bits") spec->value_bits = static_cast<int>(alt.number);
    if (k == "value_symmetric") spec->value_symmetric = alt.flag;
    if (k == "value_group_size") spec->value_group_size = static_cast<int>(alt.number);
    if (k == "layers") spec->layers = alt.ids;
    if (k == "quantize_channels") spec->quantize_channels = alt.ids;
    if (k == "layer_rules") spec->layer_rules = alt.rules;
    if (k == "fp8_scale") spec->fp8_scale = *kernels::parse_fp8_scale_source(alt.text);
    if (k == "pre_rope") spec->pre_rope = alt.flag;
    if (k == "fp32_scales") spec->fp32_scales = alt.flag;
    if (k == "outlier_channels") {
      spec->outliers.explicit_list = alt.is_list;
      spec->outliers.count = alt.is_list ? 0 : static_cast<int>(alt.number);
      spec->outliers.channels = alt.ids;
    }
  }

  // Next combination, odometer style (last dimension fastest); false after the last.
  static bool advance(const std::vector<std::vector<std::size_t>>& dims, const std::vector<Axis>& axes,
                      std::vector<std::size_t>* index) {
    for (std::size_t d = dims.size(); d-- > 0;) {
      if (++(*index)[d] < axes[dims[d][0]].alts.size()) return true;
      (*index)[d] = 0;
    }
    return false;
  }

  const Axis* find_axis(const std::vector<Axis>& axes, std::string_view key) const {
    for (const Axis& a : axes) {
      if (a.key == key) return &a;
    }
    return nullptr;
  }

  // Which optional keys some combination of an entry actually used, for "has no effect"
  // checks after the sweep.
  struct KeyUsage {
    bool group_size = false;
    bool prefill = false;
    std::map<std::string, bool> relevant;  // key -> relevant in some combination

    void record(const KvSpec& spec) {
      const KvScheme scheme = spec.scheme;
      const bool quantizes = scheme != KvScheme::kNone;
      relevant["bits"] = relevant["bits"] || scheme == KvScheme::kInt || scheme == KvScheme::kKivi;
      for (const char* k : {"symmetric", "granularity", "key_granularity", "value_granularity"}) {
        relevant[k] = relevant[k] || scheme == KvScheme::kInt;
      }
      for (const char* k : {"placement", "residual", "protect_layers", "outlier_channels"}) {
        relevant[k] = relevant[k] || quantizes;
      }
      const bool int_quantized =
          scheme == KvScheme::kInt && (spec.bits != 16 || (spec.value_bits != 0 && spec.value_bits != 16));
      const bool per_group = int_quantized && (spec.key_granularity == Granularity::kPerGroup ||
                                               spec.value_granularity == Granularity::kPerGroup);
      const bool cache_channel =
          int_quantized && spec.placement == Placement::kCache &&
          (spec.key_granularity == Granularity::kPerChannel || spec.value_granularity == Granularity::kPerChannel);
      group_size = group_size || per_group || cache_channel || scheme == KvScheme::kKivi;
      prefill = prefill || (quantizes && spec.placement == Placement::kCache);
    }
  };

  // The sweep's dimensions: each zip group, then each ungrouped axis, in axis order.
  static std::vector<std::vector<std::size_t>> sweep_dimensions(const std::vector<Axis>& axes,
                                                                const std::vector<std::vector<std::size_t>>& groups) {
    std::vector<std::vector<std::size_t>> dims;
    std::vector<bool> grouped(axes.size(), false);
    for (std::size_t a = 0; a < axes.size(); ++a) {
      const auto g = std::find_if(groups.begin(), groups.end(),
                                  [&](const auto& grp) { return std::find(grp.begin(), grp.end(), a) != grp.end(); });
      if (g == groups.end()) {
        dims.push_back({a});
      } else if (!grouped[a]) {
        dims.push_back(*g);
        for (std::size_t m : *g) grouped[m] = true;
      }
    }
    return dims;
  }

  // NOTE: a few long lists cross into millions of specs; refuse before building them.
  bool within_combination_limit(const std::vector<std::vector<std::size_t>>& dims, const std::vector<Axis>& axes) {
    std::size_t combinations = 1;
    for (const auto& dim : dims) {
      combinations *= axes[dim[0]].alts.size();
      if (combinations > kMaxEntryCombinations) {
        r_.error(entry_where_, entry_path_,
                 "this entry sweeps more than " + std::to_string(kMaxEntryCombinations) +
                     " combinations; split it or use zip");
        return false;
      }
    }
    return true;
  }

  // The spec of one combination (`index` per dimension), with the keys it set and the Alt
  // that set each, and the scheme's defaults for what it left out.
  KvSpec build_combination(const std::vector<Axis>& axes, const std::vector<std::vector<std::size_t>>& dims,
                           const std::vector<std::size_t>& index, std::set<std::string>* set_keys,
                           std::map<std::string, const Alt*>* chosen) {
    KvSpec spec;
    // Apply key_/value_granularity before granularity so the override rule holds.
    std::vector<std::pair<const Axis*, const Alt*>> picks;
    for (std::size_t d = 0; d < dims.size(); ++d) {
      for (std::size_t a : dims[d]) picks.emplace_back(&axes[a], &axes[a].alts[index[d]]);
    }
    std::stable_sort(picks.begin(), picks.end(), [](const auto& x, const auto& y) {
      return (x.first->key == "granularity") < (y.first->key == "granularity");
    });
    for (const auto& [axis, alt] : picks) {
      apply(*axis, *alt, &spec, set_keys);
      (*chosen)[axis->key] = alt;
    }
    if (spec.scheme == KvScheme::kKivi) {
      if (!set_keys->count("group_size")) spec.group_size = kernels::kKiviDefaultGroupSize;
      if (!set_keys->count("residual")) spec.residual = kernels::kKiviDefaultResidual;
    }
    return spec;
  }

  // Reports what is wrong with one combination, located at the Alt that caused it; false if
  // anything is.
  bool check_combination(const KvSpec& spec, const std::set<std::string>& set_keys,
                         const std::map<std::string, const Alt*>& chosen) {
    bool ok = true;
    const KvScheme scheme = spec.scheme;
    if ((scheme == KvScheme::kInt || scheme == KvScheme::kKivi) && !set_keys.count("bits")) {
      r_.error(entry_where_, child(entry_path_, "bits"),
               "missing required key `bits` for scheme " + std::string(to_string(scheme)));
      ok = false;
    }
    // The rules themselves are kernels::validate_kv_spec's; here they get a YAML location.
    for (const kernels::KvSpecProblem& problem : kernels::validate_kv_spec(spec)) {
      if (problem.key == "bits" && !set_keys.count("bits")) continue;  // reported as missing above
      const Alt* alt = culprit(problem.key, chosen);
      const SourceLocation at = alt != nullptr ? alt->where : entry_where_;
      const std::string at_path = alt != nullptr ? alt->path : child(entry_path_, problem.key);
      if (reported_.insert(at_path + "\n" + problem.message).second) r_.error(at, at_path, problem.message);
      ok = false;
    }
    return ok;
  }

  // After the sweep: keys no combination used are errors (group_size, prefill_attention) or
  // warnings (the rest); false on an error.
  bool check_usage(const std::vector<Axis>& axes, const KeyUsage& usage) {
    bool ok = true;
    if (const Axis* a = find_axis(axes, "group_size"); a != nullptr && !usage.group_size) {
      r_.error(a->where, a->path,
               "group_size is only used with a per_group granularity (or scheme kivi, or per_channel in the cache)");
      ok = false;
    }
    if (const Axis* a = find_axis(axes, "prefill_attention"); a != nullptr && !usage.prefill) {
      r_.error(a->where, a->path, "prefill_attention only applies with placement: cache");
      ok = false;
    }
    const Axis* scheme_axis = find_axis(axes, "scheme");
    for (const auto& [key, is_relevant] : usage.relevant) {
      const Axis* a = find_axis(axes, key);
      if (a == nullptr || is_relevant) continue;
      const std::string scheme_text =
          scheme_axis->sweep ? "the schemes of this entry" : "scheme " + scheme_axis->alts[0].text;
      r_.warning(a->where, a->path, "`" + key + "` has no effect with " + scheme_text + "; ignored");
    }
    return ok;
  }

  // A `name` labels one spec: an entry that sweeps several cannot carry it.
  bool check_name(const std::vector<KvSpec>& out, const std::string& name) {
    if (name.empty()) return true;
    std::set<std::string> distinct;
    for (const KvSpec& s : out) distinct.insert(canonical_json(s));
    if (distinct.size() <= 1) return true;
    r_.error(name_where_, child(entry_path_, "name"),
             "name labels one spec, but this entry sweeps " + std::to_string(distinct.size()) +
                 "; drop the name or split the entry");
    return false;
  }

  // Crosses the axes (zip groups count as one axis), checks each combination and returns
  // the canonical specs in a deterministic order (the key table's order, last key fastest).
  std::vector<KvSpec> combine(const std::vector<Axis>& axes, const std::vector<std::vector<std::size_t>>& groups,
                              const std::string& name) {
    const std::vector<std::vector<std::size_t>> dims = sweep_dimensions(axes, groups);
    if (!within_combination_limit(dims, axes)) return {};
    std::vector<std::size_t> index(dims.size(), 0);
    std::vector<KvSpec> out;
    KeyUsage usage;
    bool ok = true;
    do {
      std::set<std::string> set_keys;
      std::map<std::string, const Alt*> chosen;
      const KvSpec spec = build_combination(axes, dims, index, &set_keys, &chosen);
      usage.record(spec);
      ok = check_combination(spec, set_keys, chosen) && ok;
      out.push_back(canonicalize(spec));
      out.back().name = name;
    } while (advance(dims, axes, &index));
    ok = check_usage(axes, usage) && ok;
    if (!ok || !check_name(out, name)) return {};
    return out;
  }

  // The Alt a problem's key points at: the key itself, or for granularity problems the key
  // that set it (key_/value_granularity, else the shared granularity). nullptr: the entry.
  static const Alt* culprit(const std::string& key, const std::map<std::string, const Alt*>& chosen) {
    std::string k = key.substr(0, key.find('['));  // layer_rules[0].bits -> layer_rules
    if (k.find('.') != std::string::npos) k = k.substr(0, k.find('.'));
    for (const std::string& candidate : {k, std::string("granularity")}) {
      if (candidate == "granularity" && k.find("granularity") == std::string::npos) break;
      if (auto it = chosen.find(candidate); it != chosen.end()) return it->second;
    }
    if (k == "granularity") {
      for (const char* g : {"key_granularity", "value_granularity"}) {
        if (auto it = chosen.find(g); it != chosen.end()) return it->second;
      }
    }
    return nullptr;
  }

  YamlReader& r_;
  const GridSpec& grid_;
  std::set<std::string> reported_;  // path + message already reported (sweeps repeat them)
  std::string entry_path_;
  SourceLocation entry_where_;
  SourceLocation name_where_;
};

}  // namespace

void parse_kv_cache(ParseContext& ctx, const MapEntry& entry, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  if (!entry.value.IsSequence()) {
    r.error(entry.where, entry.path, "expected a list of quantizer entries, got " + describe(entry.value));
    return;
  }
  if (entry.value.size() == 0) {
    r.error(entry.where, entry.path, "kv_cache is empty; list at least one entry (e.g. - scheme: none)");
    return;
  }
  std::map<std::string, std::size_t> seen;         // canonical json -> index in grid->kv_specs
  std::map<std::string, std::string> label_owner;  // custom label -> canonical json
  std::size_t i = 0;
  for (const YAML::Node& item : entry.value) {
    const std::string path = element(entry.path, i++);
    const SourceLocation where = location_of(item, entry.where);
    EntryParser parser(ctx, *grid);
    for (KvSpec& spec : parser.parse(item, where, path)) {
      const std::string json = canonical_json(spec);
      if (!spec.name.empty()) {
        const auto [it, inserted] = label_owner.emplace(spec.name, json);
        if (!inserted && it->second != json) {
          r.error(where, child(path, "name"), "name `" + spec.name + "` already labels a different spec");
          continue;
        }
      }
      if (seen.count(json)) continue;  // e.g. int bits 16 after none: the same quantizer
      seen.emplace(json, grid->kv_specs.size());
      grid->kv_specs.push_back(std::move(spec));
      grid->kv_where.push_back(where);
    }
  }
}

}  // namespace kvsafe::orchestrator::detail
