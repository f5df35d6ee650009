// The grid's smaller sections: benchmarks, generation, judge, diagnose, execution,
// slurm and exclude (docs/grid.md has each key with an example).

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include "common/error.h"
#include "common/sha256.h"
#include "eval/benchmark_registry.h"
#include "orchestrator/cell_identity.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser_internal.h"

namespace kvsafe::orchestrator::detail {
namespace {

constexpr std::array<std::string_view, 10> kBenchmarkKeys = {"name", "subset",     "task",   "limit",          "sample",
                                                             "seed", "max_length", "stride", "max_new_tokens", "file"};
constexpr std::array<std::string_view, 5> kTasks = {"refusal", "over_refusal", "perplexity", "ifeval",
                                                    "refusal_direction"};
constexpr std::array<std::string_view, 17> kGenerationKeys = {"max_new_tokens",
                                                              "batch_size",
                                                              "temperature",
                                                              "top_p",
                                                              "seed",
                                                              "samples",
                                                              "system_prompt",
                                                              "strip_prompts",
                                                              "clean_answers",
                                                              "bos",
                                                              "generation_config",
                                                              "pad_token",
                                                              "padding_queries",
                                                              "repetition_penalty",
                                                              "top_k",
                                                              "speculative",
                                                              "zip"};
constexpr std::array<std::string_view, 3> kSpeculativeKeys = {"draft", "draft_tokens", "quantize"};
constexpr std::array<std::string_view, 3> kSpeculativeQuantize = {"target", "draft", "both"};
constexpr std::array<std::string_view, 2> kBosRules = {"once", "paper"};
constexpr std::array<std::string_view, 2> kGenerationConfigUses = {"ignore", "model"};
constexpr std::array<std::string_view, 2> kPadTokens = {"eos", "tokenizer"};
constexpr std::array<std::string_view, 2> kPaddingQueries = {"attend_all", "zero"};
constexpr std::array<std::string_view, 2> kGenerationSweepKeys = {"temperature", "seed"};
constexpr std::array<std::string_view, 8> kJudgeKeys = {"kind",  "markers_file", "strip_spaces_fallback", "apostrophes",
                                                        "model", "format",       "template_file",         "unparsed"};
constexpr std::array<std::string_view, 2> kApostropheRules = {"normalize", "exact"};
constexpr std::array<std::string_view, 2> kUnparsedRules = {"unjudged", "not_refused"};
constexpr std::array<std::string_view, 2> kJudgeKinds = {"keyword", "model"};
constexpr std::array<std::string_view, 2> kJudgeFormats = {"wildguard", "llama_guard3"};
constexpr std::array<std::string_view, 14> kDiagnoseKeys = {"calibration_prompts",
                                                            "bits",
                                                            "critical_flip_threshold",
                                                            "outlier_fraction",
                                                            "pcr_low",
                                                            "pcr_high",
                                                            "tasks",
                                                            "models",
                                                            "critical_layers",
                                                            "test_prompts",
                                                            "max_new_tokens",
                                                            "protect_top_k",
                                                            "mitigation_bits",
                                                            "mitigate"};
constexpr std::array<std::string_view, 2> kMitigateChoices = {"auto", "none"};
constexpr std::array<std::string_view, 4> kExecutionKeys = {"shard_size", "retries", "worker_timeout_s",
                                                            "grace_period_s"};
constexpr std::array<std::string_view, 6> kSlurmKeys = {"partition", "nodes",   "gpus_per_node",
                                                        "time",      "account", "extra"};
// NOTE: in ExcludeKey's order (a key's position is its enum value).
constexpr std::array<std::string_view, 16> kExcludeKeys = {"model",
                                                           "benchmark",
                                                           "task",
                                                           "kv",
                                                           "scheme",
                                                           "bits",
                                                           "symmetric",
                                                           "granularity",
                                                           "key_granularity",
                                                           "value_granularity",
                                                           "group_size",
                                                           "residual",
                                                           "placement",
                                                           "temperature",
                                                           "seed",
                                                           "draft"};
constexpr std::array<std::string_view, 5> kSchemes = {"none", "int", "fp8_e4m3", "fp8_e5m2", "kivi"};
constexpr std::array<std::string_view, 4> kGranularities = {"per_token", "per_channel", "per_group", "per_tensor"};
constexpr std::array<std::string_view, 2> kPlacements = {"projection", "cache"};

// A number in a closed range [lo, hi] (or half-open when lo_open).
std::optional<double> number_in(YamlReader& r, const MapEntry& e, double lo, double hi, bool lo_open = false) {
  auto value = r.number(e);
  if (!value) return std::nullopt;
  if ((lo_open ? *value <= lo : *value < lo) || *value > hi) {
    r.error(e.where, e.path,
            "must be in " + std::string(lo_open ? "(" : "[") + canonical_number(lo) + ", " + canonical_number(hi) +
                "], got " + canonical_number(*value));
    return std::nullopt;
  }
  return value;
}

void parse_benchmark(ParseContext& ctx, const YAML::Node& node, SourceLocation where, const std::string& path,
                     GridSpec* grid) {
  YamlReader& r = ctx.reader;
  BenchmarkSpec bench;
  bench.where = where;
  const std::vector<std::string_view> names = benchmark_names();
  // Shorthand: `- advbench` is `- name: advbench`.
  if (node.IsScalar()) {
    auto name = r.string(node, where, path, false);
    if (!name) return;
    const BenchmarkInfo* info = find_benchmark(*name);
    if (info == nullptr) {
      r.error(where, path, "unknown benchmark `" + *name + "`" + did_you_mean(*name, names));
      return;
    }
    if (info->format == eval::BenchmarkFormat::kConversations) {
      r.error(where, path, "benchmark " + *name + " needs its file: `- {name: " + *name + ", file: PATH}`");
      return;
    }
    bench.name = *name;
    bench.task = info->default_task;
    grid->benchmarks.push_back(bench);
    return;
  }
  const auto view = r.map(node, where, path, kBenchmarkKeys);
  if (!view) return;
  bench.where = view->where;
  if (!r.require(*view, "name")) return;
  const MapEntry* name_entry = view->find("name");
  auto name = r.string(*name_entry, false);
  if (!name) return;
  const BenchmarkInfo* info = find_benchmark(*name);
  if (info == nullptr) {
    r.error(name_entry->where, name_entry->path, "unknown benchmark `" + *name + "`" + did_you_mean(*name, names));
    return;
  }
  bench.name = *name;
  bench.task = info->default_task;
  bool ok = true;
  if (const MapEntry* e = view->find("task")) {
    if (auto text = r.choice(*e, kTasks)) {
      const Task task = *parse_task(*text);
      if (std::find(info->tasks.begin(), info->tasks.end(), task) == info->tasks.end()) {
        std::string valid;
        for (Task t : info->tasks) valid += (valid.empty() ? "" : ", ") + std::string(to_string(t));
        r.error(e->where, e->path,
                "task " + *text + " is not valid for benchmark " + bench.name + " (valid: " + valid + ")");
        ok = false;
      }
      bench.task = task;
    } else {
      ok = false;
    }
  }
  const MapEntry* file_entry = view->find("file");
  if (info->format == eval::BenchmarkFormat::kConversations) {
    if (file_entry == nullptr) {
      r.error(view->where, path, "benchmark " + bench.name + " needs `file:` (a JSONL of conversations)");
      return;
    }
    auto text = r.string(*file_entry, false);
    if (!text) return;
    auto resolved = expand_path(ctx, *text, file_entry->where, file_entry->path);
    if (!resolved) return;
    try {
      const eval::Benchmark conversations = eval::load_conversations(*resolved, *text);
      bench.file = *resolved;
      bench.file_sha256 = sha256_file_hex(*resolved);
      bench.file_prompts = static_cast<std::int64_t>(conversations.prompts.size());
    } catch (const InputError& error) {
      r.error(file_entry->where, file_entry->path, error.what());
      return;
    }
  } else if (file_entry != nullptr) {
    r.error(file_entry->key_where, file_entry->path, "file only applies to benchmark conversations");
    return;
  }
  std::int64_t available = bench.file ? bench.file_prompts : info->plan_prompt_count();
  std::string available_of = bench.name;
  if (info->per_class_prompt_count > 0) {  // limit and sample count per class
    available = info->per_class_prompt_count;
    available_of = bench.name + "'s smaller class (limit and sample count harmful and harmless prompts apart)";
  }
  if (const MapEntry* e = view->find("subset")) {
    if (auto text = r.string(*e, false)) {
      if (const SubsetInfo* subset = find_subset(*info, *text)) {
        bench.subset = *text;
        available = subset->prompt_count;
        available_of = bench.name + " " + *text;
      } else {
        std::string valid;
        for (const SubsetInfo& s : info->subsets) valid += (valid.empty() ? "" : ", ") + std::string(s.name);
        r.error(e->where, e->path,
                info->subsets.empty() ? "benchmark " + bench.name + " has no subsets"
                                      : "unknown subset `" + *text + "` of " + bench.name + " (valid: " + valid + ")");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  const MapEntry* limit_entry = view->find("limit");
  if (limit_entry != nullptr && !limit_entry->value.IsNull()) {
    if (auto limit = r.integer(*limit_entry, 1)) {
      bench.limit = limit;
      if (available > 0 && *limit > available) {
        r.warning(limit_entry->where, limit_entry->path,
                  "limit " + std::to_string(*limit) + " exceeds the " + std::to_string(available) + " prompts of " +
                      available_of);
      }
    } else {
      ok = false;
    }
  }
  if (const MapEntry* e = view->find("sample"); e != nullptr && !e->value.IsNull()) {
    if (auto sample = r.integer(*e, 1)) {
      bench.sample = sample;
      if (info->per_class_prompt_count > 0 && *sample > info->per_class_prompt_count) {
        r.warning(e->where, e->path,
                  "sample " + std::to_string(*sample) + " exceeds the " + std::to_string(available) + " prompts of " +
                      available_of + ": each class gives " + std::to_string(info->per_class_prompt_count));
      }
      if (bench.limit && *sample > *bench.limit) {
        r.error(e->where, e->path,
                "sample (" + std::to_string(*sample) + ") is larger than limit (" + std::to_string(*bench.limit) + ")");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  if (const MapEntry* e = view->find("seed")) {
    if (auto seed = r.integer(*e, 0)) {
      bench.seed = *seed;
    } else {
      ok = false;
    }
  }
  for (const char* key : {"max_length", "stride"}) {
    const MapEntry* e = view->find(key);
    if (e == nullptr) continue;
    if (bench.task != Task::kPerplexity) {
      r.error(e->key_where, e->path, std::string(key) + " only applies to task perplexity");
      ok = false;
      continue;
    }
    if (auto value = r.integer(*e, 1, 1 << 20)) {
      (std::string_view(key) == "max_length" ? bench.max_length : bench.stride) = *value;
    } else {
      ok = false;
    }
  }
  if (const MapEntry* e = view->find("max_new_tokens"); e != nullptr && !e->value.IsNull()) {
    if (bench.task == Task::kPerplexity || bench.task == Task::kRefusalDirection) {
      r.error(e->key_where, e->path, "max_new_tokens only applies to tasks that generate");
      ok = false;
    } else if (auto value = r.integer(*e, 1, 1 << 20)) {
      bench.max_new_tokens = *value;
    } else {
      ok = false;
    }
  }
  if (ok && bench.stride > bench.max_length) {
    const MapEntry* e = view->find("stride");
    r.error(e->where, e->path,
            "stride (" + std::to_string(bench.stride) + ") must not exceed max_length (" +
                std::to_string(bench.max_length) + ")");
    ok = false;
  }
  if (ok) grid->benchmarks.push_back(std::move(bench));
}

// temperature / seed: a scalar, or a list that sweeps.
template <typename T, typename Read>
std::optional<std::vector<T>> read_sweep(YamlReader& r, const MapEntry& e, Read read) {
  std::vector<T> values;
  if (!e.value.IsSequence()) {
    auto v = read(e.value, e.where, e.path);
    if (!v) return std::nullopt;
    values.push_back(*v);
    return values;
  }
  if (e.value.size() == 0) {
    r.error(e.where, e.path, "an empty list sweeps nothing; give at least one value");
    return std::nullopt;
  }
  bool ok = true;
  std::size_t i = 0;
  for (const YAML::Node& item : e.value) {
    const std::string item_path = element(e.path, i++);
    const SourceLocation item_where = location_of(item, e.where);
    auto v = read(item, item_where, item_path);
    if (!v) {
      ok = false;
      continue;
    }
    if (std::find(values.begin(), values.end(), *v) != values.end()) {
      r.warning(item_where, item_path, "repeats an earlier value; ignored");
      continue;
    }
    values.push_back(*v);
  }
  if (!ok) return std::nullopt;
  return values;
}

// An exclude value in canonical text, typed by its key.
std::optional<std::string> exclude_value(YamlReader& r, std::string_view key, const YAML::Node& node,
                                         SourceLocation where, const std::string& path) {
  // draft: a speculative cell's draft model, "none" for plain decoding.
  if (key == "model" || key == "benchmark" || key == "kv" || key == "draft") return r.string(node, where, path);
  if (key == "task") return r.choice(node, where, path, kTasks);
  if (key == "scheme") return r.choice(node, where, path, kSchemes);
  if (key == "placement") return r.choice(node, where, path, kPlacements);
  if (key.find("granularity") != std::string_view::npos) return r.choice(node, where, path, kGranularities);
  if (key == "symmetric") {
    auto flag = r.boolean(node, where, path);
    if (!flag) return std::nullopt;
    return std::string(*flag ? "true" : "false");
  }
  if (key == "temperature") {
    auto value = r.number(node, where, path);
    if (!value) return std::nullopt;
    return canonical_number(*value);
  }
  auto value = r.integer(node, where, path);  // bits, group_size, residual, seed
  if (!value) return std::nullopt;
  return std::to_string(*value);
}

// One value of generation.speculative: {draft: NAME, draft_tokens: 3, quantize: target|draft|both};
// the draft is an entry of `models` (parsed before this section), copied whole: its identity is
// part of the cell's. nullopt after reporting what is wrong.
std::optional<SpeculativeSettings> parse_speculative(YamlReader& r, const YAML::Node& node, SourceLocation where,
                                                     const std::string& path, const GridSpec& grid) {
  const auto view = r.map(node, where, path, kSpeculativeKeys);
  if (!view) return std::nullopt;
  bool ok = r.require(*view, "draft");
  SpeculativeSettings spec;
  if (const MapEntry* e = view->find("draft")) {
    const auto name = r.string(*e);
    if (!name) {
      ok = false;
    } else if (const ModelSpec* model = grid.find_model(*name)) {
      spec.draft = *model;
    } else {
      std::vector<std::string_view> known;
      for (const ModelSpec& m : grid.models) known.push_back(m.name);
      r.error(e->where, e->path,
              "`" + *name + "` is not a name in `models`" + did_you_mean(*name, known) +
                  " (the draft is one of the grid's models; the cell's own model drafts for itself)");
      ok = false;
    }
  }
  if (const MapEntry* e = view->find("draft_tokens")) {
    if (auto v = r.integer(*e, 1, 64)) {
      spec.draft_tokens = *v;
    } else {
      ok = false;
    }
  }
  if (const MapEntry* e = view->find("quantize")) {
    if (auto v = r.choice(*e, kSpeculativeQuantize)) {
      spec.quantize = *v == "draft"  ? SpeculativeQuantize::kDraft
                      : *v == "both" ? SpeculativeQuantize::kBoth
                                     : SpeculativeQuantize::kTarget;
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return spec;
}

}  // namespace

void parse_benchmarks(ParseContext& ctx, const MapEntry& entry, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  if (!entry.value.IsSequence()) {
    r.error(entry.where, entry.path, "expected a list of benchmarks, got " + describe(entry.value));
    return;
  }
  if (entry.value.size() == 0) {
    r.error(entry.where, entry.path, "benchmarks is empty; list at least one benchmark");
    return;
  }
  std::size_t i = 0;
  std::map<std::string, std::size_t> seen;  // identity json -> index
  for (const YAML::Node& item : entry.value) {
    const std::string path = element(entry.path, i++);
    const std::size_t before = grid->benchmarks.size();
    parse_benchmark(ctx, item, location_of(item, entry.where), path, grid);
    if (grid->benchmarks.size() == before) continue;
    const BenchmarkSpec& added = grid->benchmarks.back();
    const std::string key = benchmark_identity_json(added) + std::string(to_string(added.task));
    if (const auto it = seen.find(key); it != seen.end()) {
      r.warning(added.where, path, "same as benchmarks[" + std::to_string(it->second) + "]; ignored");
      grid->benchmarks.pop_back();
      continue;
    }
    seen.emplace(key, i - 1);
  }
}

void parse_generation(ParseContext& ctx, const MapEntry& entry, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  grid->generations = {default_generation(grid->profile)};
  const auto view = r.map(entry.value, entry.where, entry.path, kGenerationKeys);
  if (!view) return;
  GenerationSettings base = default_generation(grid->profile);
  if (const MapEntry* e = view->find("strip_prompts")) {
    if (auto v = r.boolean(*e)) base.strip_prompts = *v;
  }
  if (const MapEntry* e = view->find("clean_answers")) {
    if (auto v = r.boolean(*e)) base.clean_answers = *v;
  }
  if (const MapEntry* e = view->find("bos")) {
    if (auto v = r.choice(*e, kBosRules)) base.paper_bos = *v == "paper";
  }
  if (const MapEntry* e = view->find("generation_config")) {
    if (auto v = r.choice(*e, kGenerationConfigUses)) base.use_generation_config = *v == "model";
  }
  if (const MapEntry* e = view->find("pad_token")) {
    if (auto v = r.choice(*e, kPadTokens)) base.tokenizer_pad = *v == "tokenizer";
  }
  if (const MapEntry* e = view->find("padding_queries")) {
    if (auto v = r.choice(*e, kPaddingQueries)) base.zero_padding_queries = *v == "zero";
  }
  if (const MapEntry* e = view->find("repetition_penalty"); e != nullptr && !e->value.IsNull()) {
    if (auto v = number_in(r, *e, 0.0, 100.0, true)) base.repetition_penalty = *v;
  }
  if (const MapEntry* e = view->find("top_k"); e != nullptr && !e->value.IsNull()) {
    if (auto v = r.integer(*e, 0, 1 << 24)) base.top_k = *v;
  }
  if (const MapEntry* e = view->find("max_new_tokens")) {
    if (auto v = r.integer(*e, 1, 1 << 20)) base.max_new_tokens = *v;
  }
  if (const MapEntry* e = view->find("batch_size")) {
    if (auto v = r.integer(*e, 1, 65536)) base.batch_size = *v;
  }
  if (const MapEntry* e = view->find("top_p")) {
    if (auto v = number_in(r, *e, 0.0, 1.0, true)) base.top_p = *v;
  }
  const MapEntry* samples_entry = view->find("samples");
  if (samples_entry != nullptr) {
    if (auto v = r.integer(*samples_entry, 1, 1024)) base.samples = *v;
  }
  // speculative: a mapping, null (plain decoding), or a list of those: a sweep axis crossed with
  // everything else, so plain and speculative cells of the same settings (or several drafts and
  // quantized sides) run side by side (issue 22).
  std::vector<std::optional<SpeculativeSettings>> speculatives{std::nullopt};
  const MapEntry* speculative_entry = view->find("speculative");
  if (speculative_entry != nullptr && !speculative_entry->value.IsNull()) {
    speculatives.clear();
    bool read = true;
    const auto add = [&](const YAML::Node& n, SourceLocation w, const std::string& p) {
      std::optional<SpeculativeSettings> value;
      if (!n.IsNull()) {
        value = parse_speculative(r, n, w, p, *grid);
        if (!value) {
          read = false;
          return;
        }
      }
      const auto same = [&](const std::optional<SpeculativeSettings>& other) {
        if (!value || !other) return value.has_value() == other.has_value();
        return value->draft.name == other->draft.name && value->draft_tokens == other->draft_tokens &&
               value->quantize == other->quantize;
      };
      if (std::any_of(speculatives.begin(), speculatives.end(), same)) {
        r.warning(w, p, "repeats an earlier value; ignored");
        return;
      }
      speculatives.push_back(value);
    };
    const MapEntry& e = *speculative_entry;
    if (!e.value.IsSequence()) {
      add(e.value, e.where, e.path);
    } else if (e.value.size() == 0) {
      r.error(e.where, e.path, "an empty list sweeps nothing; give at least one value (null: plain decoding)");
      read = false;
    } else {
      std::size_t i = 0;
      for (const YAML::Node& item : e.value) add(item, location_of(item, e.where), element(e.path, i++));
    }
    if (!read) return;
  }
  const bool any_speculative =
      std::any_of(speculatives.begin(), speculatives.end(), [](const auto& v) { return v.has_value(); });
  // NOTE: engine::SpeculativeGenerator takes no repetition penalty; a file's penalty
  // (generation_config: model) is refused by the worker, which reads the file.
  if (const MapEntry* e = view->find("repetition_penalty");
      any_speculative && e != nullptr && base.repetition_penalty && *base.repetition_penalty != 1.0) {
    r.error(e->where, e->path,
            "speculative decoding applies no repetition penalty; leave repetition_penalty unset (or 1.0) with "
            "speculative");
    return;
  }
  // system_prompt: a text ("" = no system turn), null (the model's own), or a list of those: a
  // sweep axis crossed with everything else (is the collapse prompt-dependent? issue 22).
  std::vector<std::optional<std::string>> system_prompts{std::nullopt};
  if (const MapEntry* e = view->find("system_prompt"); e != nullptr && !e->value.IsNull()) {
    auto values = read_sweep<std::optional<std::string>>(
        r, *e,
        [&](const YAML::Node& n, SourceLocation w, const std::string& p) -> std::optional<std::optional<std::string>> {
          if (n.IsNull()) return std::optional<std::string>();
          auto v = r.string(n, w, p);
          if (!v) return std::nullopt;
          return std::optional<std::string>(*v);
        });
    if (values) system_prompts = *values;
  }
  std::vector<double> temperatures{0.0};
  std::vector<std::int64_t> seeds{0};
  const MapEntry* temperature_entry = view->find("temperature");
  const MapEntry* seed_entry = view->find("seed");
  bool ok = true;
  if (temperature_entry != nullptr) {
    auto values =
        read_sweep<double>(r, *temperature_entry,
                           [&](const YAML::Node& n, SourceLocation w, const std::string& p) -> std::optional<double> {
                             auto v = r.number(n, w, p);
                             if (v && *v < 0) {
                               r.error(w, p, "temperature must be >= 0 (0 = greedy), got " + canonical_number(*v));
                               return std::nullopt;
                             }
                             return v;
                           });
    if (values)
      temperatures = *values;
    else
      ok = false;
  }
  if (seed_entry != nullptr) {
    auto values = read_sweep<std::int64_t>(
        r, *seed_entry,
        [&](const YAML::Node& n, SourceLocation w, const std::string& p) { return r.integer(n, w, p, 0); });
    if (values)
      seeds = *values;
    else
      ok = false;
  }
  bool zipped = false;
  if (const MapEntry* e = view->find("zip")) {
    if (!e->value.IsSequence()) {
      r.error(e->where, e->path, "expected a list of keys (e.g. [temperature, seed]), got " + describe(e->value));
      ok = false;
    } else {
      std::size_t i = 0;
      std::set<std::string> keys;
      for (const YAML::Node& item : e->value) {
        const std::string item_path = element(e->path, i++);
        const SourceLocation item_where = location_of(item, e->where);
        auto key = r.string(item, item_where, item_path, false);
        if (!key) {
          ok = false;
          continue;
        }
        if (std::find(kGenerationSweepKeys.begin(), kGenerationSweepKeys.end(), *key) == kGenerationSweepKeys.end()) {
          r.error(item_where, item_path,
                  "zip names unknown key `" + *key + "`" + did_you_mean(*key, kGenerationSweepKeys) +
                      "; generation sweeps only temperature and seed");
          ok = false;
          continue;
        }
        const MapEntry* swept = *key == "temperature" ? temperature_entry : seed_entry;
        if (swept == nullptr) {
          r.error(item_where, item_path, "zip names `" + *key + "`, which this section does not set");
          ok = false;
        } else if (!swept->value.IsSequence()) {
          r.error(item_where, item_path, "zip key `" + *key + "` is not a list; zip pairs up list values");
          ok = false;
        }
        keys.insert(*key);
      }
      zipped = keys.size() == 2;
      if (ok && zipped && temperatures.size() != seeds.size()) {
        r.error(e->where, e->path,
                "zip lists have unequal lengths: temperature has " + std::to_string(temperatures.size()) +
                    " values, seed has " + std::to_string(seeds.size()));
        ok = false;
      }
    }
  }
  if (!ok) return;
  if (any_speculative) {
    // Greedy only (engine/speculative_generator.h): a sampled point of a sweep is an error too.
    for (const double t : temperatures) {
      if (t == 0.0) continue;
      r.error(speculative_entry->where, speculative_entry->path,
              "speculative decoding is greedy: it needs temperature 0, and this section also sets temperature " +
                  canonical_number(t));
      return;
    }
    // The speculative generator decodes one prompt at a time; its cells are compared with the
    // plain cells of the same settings, which must then decode alone too (batch-wide quantizer
    // statistics and left padding would otherwise differ between the two).
    if (base.batch_size != 1) {
      r.error(speculative_entry->where, speculative_entry->path,
              "speculative decoding runs one prompt at a time: set generation.batch_size: 1 (this section has " +
                  std::to_string(base.batch_size) + ") so the plain cells it is compared with decode alone too");
      return;
    }
  }
  if (base.samples > 1 && std::all_of(temperatures.begin(), temperatures.end(), [](double t) { return t == 0.0; })) {
    r.error(samples_entry->where, samples_entry->path,
            "samples > 1 needs temperature > 0: greedy answers to one prompt are all the same");
    return;
  }
  grid->generations.clear();
  for (const std::optional<std::string>& system_prompt : system_prompts) {
    base.system_prompt = system_prompt;
    for (const std::optional<SpeculativeSettings>& speculative : speculatives) {
      base.speculative = speculative;
      if (zipped) {
        for (std::size_t i = 0; i < temperatures.size(); ++i) {
          GenerationSettings g = base;
          g.temperature = temperatures[i];
          g.seed = seeds[i];
          if (g.temperature == 0.0) g.samples = 1;  // a sweep's greedy point draws one answer
          grid->generations.push_back(g);
        }
        continue;
      }
      for (double t : temperatures) {
        for (std::int64_t s : seeds) {
          GenerationSettings g = base;
          g.temperature = t;
          g.seed = s;
          if (g.temperature == 0.0) g.samples = 1;  // a sweep's greedy point draws one answer
          grid->generations.push_back(g);
        }
      }
    }
  }
}

void parse_judge(ParseContext& ctx, const MapEntry& entry, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  const auto view = r.map(entry.value, entry.where, entry.path, kJudgeKeys);
  if (!view) return;
  JudgeSpec& judge = grid->judge;
  if (const MapEntry* e = view->find("kind")) {
    if (auto kind = r.choice(*e, kJudgeKinds)) judge.kind = *eval::parse_judge_kind(*kind);
  }
  const bool model_kind = judge.kind == JudgeKind::kModel;
  for (const char* key : {"markers_file", "strip_spaces_fallback", "apostrophes"}) {
    const MapEntry* e = view->find(key);
    if (e != nullptr && model_kind && !e->value.IsNull()) {
      r.error(e->key_where, e->path, std::string(key) + " only applies to kind: keyword");
    }
  }
  for (const char* key : {"model", "format", "template_file", "unparsed"}) {
    const MapEntry* e = view->find(key);
    if (e != nullptr && !model_kind && !e->value.IsNull()) {
      r.error(e->key_where, e->path, std::string(key) + " only applies to kind: model");
    }
  }
  if (!model_kind) {
    if (const MapEntry* e = view->find("markers_file"); e != nullptr && e->value.IsNull()) {
      judge.markers_file.reset();  // null: the built-in list, also under a profile that set another
    } else if (e != nullptr) {
      if (auto text = r.string(*e, false)) {
        if (auto resolved = expand_path(ctx, *text, e->where, e->path)) {
          judge.markers_file = *resolved;
          std::error_code ec;
          if (ctx.options.require_model_files && !std::filesystem::is_regular_file(*resolved, ec)) {
            r.error(e->where, e->path, "markers file not found: " + resolved->string());
          }
        }
      }
    }
    if (const MapEntry* e = view->find("strip_spaces_fallback")) {
      if (e->value.IsSequence()) {
        // The fallback for some models only: names of the grid's models.
        judge.strip_spaces_fallback = false;
        judge.strip_spaces_models.clear();
        std::size_t i = 0;
        for (const YAML::Node& item : e->value) {
          const std::string item_path = element(e->path, i++);
          const SourceLocation item_where = location_of(item, e->where);
          auto name = r.string(item, item_where, item_path, false);
          if (!name) continue;
          if (grid->find_model(*name) == nullptr) {
            r.error(item_where, item_path, "`" + *name + "` is not one of the grid's models");
            continue;
          }
          judge.strip_spaces_models.push_back(*name);
        }
      } else if (auto flag = r.boolean(*e)) {
        judge.strip_spaces_fallback = *flag;
        judge.strip_spaces_models.clear();
      }
    }
    if (const MapEntry* e = view->find("apostrophes")) {
      if (auto rule = r.choice(*e, kApostropheRules)) judge.exact_apostrophes = *rule == "exact";
    }
    return;
  }
  if (!r.require(*view, "model")) return;
  const MapEntry* model_entry = view->find("model");
  if (auto text = r.string(*model_entry, false)) {
    judge.model = *text;
    if (const ModelSpec* named = grid->find_model(*text)) {
      // A models name: resolved here, so a worker judging another model's cells needs no lookup.
      judge.model_path = named->path;
    } else {
      // Not one of the grid's models: a path to the judge's weights.
      if (auto resolved = expand_path(ctx, *text, model_entry->where, model_entry->path)) {
        judge.model_path = *resolved;
        std::error_code ec;
        if (ctx.options.require_model_files && !std::filesystem::exists(*resolved, ec)) {
          r.error(model_entry->where, model_entry->path,
                  "judge model `" + *text + "` is neither a models name nor an existing path");
        }
      }
    }
  }
  if (const MapEntry* e = view->find("format")) {
    if (auto format = r.choice(*e, kJudgeFormats)) {
      judge.format = *eval::parse_model_judge_format(*format);
    }
  }
  if (const MapEntry* e = view->find("template_file"); e != nullptr && e->value.IsNull()) {
    judge.template_file.reset();  // null: the format's built-in prompt, also under profile: paper
  } else if (e != nullptr) {
    if (auto text = r.string(*e, false)) {
      if (auto resolved = expand_path(ctx, *text, e->where, e->path)) {
        judge.template_file = *resolved;
        std::error_code ec;
        if (ctx.options.require_model_files && !std::filesystem::is_regular_file(*resolved, ec)) {
          r.error(e->where, e->path, "judge template file not found: " + resolved->string());
        }
      }
    }
  } else if (grid->profile == GridProfile::kPaper && judge.format == ModelJudgeFormat::kWildguard) {
    // The paper's WildGuard prompt (its classifier code), not kvsafe's rendering of the format.
    judge.template_file = ctx.env.data_dir / "refusal_markers" / "judge_prompts" / "wildguard_paper.txt";
  }
  if (const MapEntry* e = view->find("unparsed")) {
    if (auto rule = r.choice(*e, kUnparsedRules)) {
      judge.unparsed = *rule == "not_refused" ? UnparsedVerdict::kNotRefused : UnparsedVerdict::kUnjudged;
    }
  }
}

void apply_profile_defaults(ParseContext& ctx, GridSpec* grid) {
  if (grid->profile != GridProfile::kPaper) return;
  JudgeSpec& judge = grid->judge;
  // The paper's keyword judge (core/classifier.py): its 22 phrases, matched as lower-cased
  // substrings with no apostrophe mapping, and the whitespace-stripped retry for Yi only.
  judge.markers_file = ctx.env.data_dir / "refusal_markers" / "paper_family_a.txt";
  judge.exact_apostrophes = true;
  for (const ModelSpec& model : grid->models) {
    std::string lower;
    for (const char c : model.name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.rfind("yi", 0) == 0 || lower.find("-yi") != std::string::npos || lower.find("_yi") != std::string::npos ||
        lower.find("/yi") != std::string::npos) {
      judge.strip_spaces_models.push_back(model.name);
    }
  }
  judge.unparsed = UnparsedVerdict::kNotRefused;
}

void check_profile_files(ParseContext& ctx, const GridSpec& grid) {
  if (grid.profile != GridProfile::kPaper || !ctx.options.require_model_files) return;
  const JudgeSpec& judge = grid.judge;
  const std::filesystem::path markers = ctx.env.data_dir / "refusal_markers" / "paper_family_a.txt";
  const std::filesystem::path wildguard =
      ctx.env.data_dir / "refusal_markers" / "judge_prompts" / "wildguard_paper.txt";
  std::error_code ec;
  for (const auto& [used, file] :
       {std::pair{judge.kind == JudgeKind::kKeyword && judge.markers_file == markers, markers},
        std::pair{judge.kind == JudgeKind::kModel && judge.template_file == wildguard, wildguard}}) {
    if (used && !std::filesystem::is_regular_file(file, ec)) {
      ctx.reader.error({1, 1}, "profile",
                       "profile: paper's judge reads " + file.string() +
                           ", which is missing (KVSAFE_DATA: `kvsafe datasets verify` checks the data folder)");
    }
  }
}

void check_shards_hold_whole_batches(ParseContext& ctx, const MapEntry* execution, const GridSpec& grid) {
  // Only generation cells come in batches.
  const bool generates = std::any_of(grid.benchmarks.begin(), grid.benchmarks.end(), [](const BenchmarkSpec& b) {
    return b.task == Task::kRefusal || b.task == Task::kOverRefusal || b.task == Task::kIfeval;
  });
  if (!generates) return;
  for (const GenerationSettings& g : grid.generations) {
    if (grid.execution.shard_size % g.batch_size == 0) continue;
    const std::string message =
        "shard_size " + std::to_string(grid.execution.shard_size) + " is not a multiple of batch_size " +
        std::to_string(g.batch_size) +
        ": a shard's last batch is short, so batch composition (and the per-tensor and per-channel scales it "
        "shares) differs from one run of the prompts in batches";
    const SourceLocation where = execution != nullptr ? execution->where : SourceLocation{1, 1};
    if (grid.profile == GridProfile::kPaper) {
      ctx.reader.error(where, "execution.shard_size", message + " (profile: paper runs whole batches)");
    } else {
      ctx.reader.warning(where, "execution.shard_size", message);
    }
    return;
  }
}

// Calls visit(item, path) for each item of a list value; reports a non-list as "expected `what`".
template <typename Visit>
void for_each_item(YamlReader& r, const MapEntry& e, std::string_view what, Visit visit) {
  if (!e.value.IsSequence()) {
    r.error(e.where, e.path, "expected " + std::string(what) + ", got " + describe(e.value));
    return;
  }
  std::size_t i = 0;
  for (const YAML::Node& item : e.value) visit(item, element(e.path, i++));
}

// A list of distinct integers in [lo, hi], in the order written (a repeat is an error).
std::vector<int> int_list(YamlReader& r, const MapEntry& e, std::int64_t lo, std::int64_t hi) {
  std::vector<int> out;
  for_each_item(r, e, "a list of integers", [&](const YAML::Node& item, const std::string& path) {
    const auto v = r.integer(item, location_of(item, e.where), path, lo, hi);
    if (!v) return;
    if (std::find(out.begin(), out.end(), static_cast<int>(*v)) != out.end()) {
      r.error(location_of(item, e.where), path, std::to_string(*v) + " is listed twice");
      return;
    }
    out.push_back(static_cast<int>(*v));
  });
  return out;
}

void parse_diagnose(ParseContext& ctx, const MapEntry& entry, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  const auto view = r.map(entry.value, entry.where, entry.path, kDiagnoseKeys);
  if (!view) return;
  DiagnoseSpec& d = grid->diagnose;
  if (const MapEntry* e = view->find("calibration_prompts")) {
    if (auto v = r.integer(*e, 1, 100000)) d.calibration_prompts = *v;
  }
  if (const MapEntry* e = view->find("bits")) {
    if (auto v = r.integer(*e, 2, 8)) d.bits = *v;
  }
  if (const MapEntry* e = view->find("critical_flip_threshold")) {
    if (auto v = number_in(r, *e, 0.0, 1.0)) d.critical_flip_threshold = *v;
  }
  if (const MapEntry* e = view->find("outlier_fraction")) {
    if (auto v = number_in(r, *e, 0.0, 1.0, true)) d.outlier_fraction = *v;
  }
  if (const MapEntry* e = view->find("pcr_low")) {
    if (auto v = number_in(r, *e, 0.0, 1.0)) d.pcr_low = *v;
  }
  const MapEntry* high = view->find("pcr_high");
  if (high != nullptr) {
    if (auto v = number_in(r, *high, 0.0, 1.0)) d.pcr_high = *v;
  }
  if (const MapEntry* e = view->find("tasks")) {
    d.tasks.clear();
    const auto& names = diagnosis_task_names();
    for_each_item(r, *e, "a list of diagnosis tasks", [&](const YAML::Node& item, const std::string& path) {
      if (auto text = r.choice(item, location_of(item, e->where), path, names)) {
        const DiagnosisTask task = *parse_diagnosis_task(*text);
        if (std::find(d.tasks.begin(), d.tasks.end(), task) == d.tasks.end()) d.tasks.push_back(task);
      }
    });
  }
  if (const MapEntry* e = view->find("models")) {
    for_each_item(r, *e, "a list of model names", [&](const YAML::Node& item, const std::string& path) {
      const auto name = r.string(item, location_of(item, e->where), path);
      if (!name) return;
      if (grid->find_model(*name) == nullptr) {
        std::vector<std::string_view> known;
        for (const ModelSpec& m : grid->models) known.push_back(m.name);
        r.error(location_of(item, e->where), path,
                "`" + *name + "` is not a name in `models`" + did_you_mean(*name, known));
        return;
      }
      d.models.push_back(*name);
    });
  }
  if (const MapEntry* e = view->find("critical_layers")) {
    d.critical_layers = int_list(r, *e, 0, 100000);
  }
  if (const MapEntry* e = view->find("test_prompts")) {
    if (auto v = r.integer(*e, 1, 100000)) d.test_prompts = *v;
  }
  if (const MapEntry* e = view->find("max_new_tokens")) {
    if (auto v = r.integer(*e, 1, 1 << 20)) d.max_new_tokens = *v;
  }
  if (const MapEntry* e = view->find("protect_top_k")) {
    d.protect_top_k = int_list(r, *e, 1, 100000);
  }
  if (const MapEntry* e = view->find("mitigation_bits")) {
    d.mitigation_bits = int_list(r, *e, 2, 8);
  }
  if (const MapEntry* e = view->find("mitigate")) {
    if (auto choice = r.choice(*e, kMitigateChoices)) d.mitigate_auto = *choice == "auto";
  }
  if (d.mitigate_auto) {
    // NOTE: `mitigate: auto` is the whole protocol: diagnose (layer ablation unless the layers
    // are named, PCR), then verify the prescribed fix.
    const auto add = [&d](DiagnosisTask t) {
      if (std::find(d.tasks.begin(), d.tasks.end(), t) == d.tasks.end()) d.tasks.push_back(t);
    };
    if (d.critical_layers.empty()) add(DiagnosisTask::kLayerAblation);
    add(DiagnosisTask::kPcr);
    add(DiagnosisTask::kMitigate);
  }
  if (const MapEntry* e = view->find("critical_layers"); e != nullptr && !d.critical_layers.empty()) {
    const std::size_t diagnosed = d.models.empty() ? grid->models.size() : d.models.size();
    if (diagnosed > 1) {
      r.error(e->where, e->path,
              "critical_layers are one model's layers, and this grid diagnoses " + std::to_string(diagnosed) +
                  " models; name the one in `diagnose.models`");
    }
  }
  if (const MapEntry* e = view->find("tasks"); e != nullptr && d.critical_layers.empty()) {
    const auto has = [&d](DiagnosisTask t) { return std::find(d.tasks.begin(), d.tasks.end(), t) != d.tasks.end(); };
    for (const DiagnosisTask t : {DiagnosisTask::kPcr, DiagnosisTask::kProtectionSweep, DiagnosisTask::kMitigation,
                                  DiagnosisTask::kChannelAblation, DiagnosisTask::kMitigate}) {
      if (!has(t) || has(DiagnosisTask::kLayerAblation)) continue;
      r.error(e->where, e->path,
              std::string(to_string(t)) +
                  " needs the critical layers: add layer_ablation to the tasks, or name them in "
                  "diagnose.critical_layers");
      break;
    }
  }
  if (const MapEntry* e = view->find("tasks"); e != nullptr) {
    const auto has = [&d](DiagnosisTask t) { return std::find(d.tasks.begin(), d.tasks.end(), t) != d.tasks.end(); };
    if (has(DiagnosisTask::kMitigate) && !has(DiagnosisTask::kPcr)) {
      r.error(e->where, e->path,
              "mitigate needs pcr (the failure mode rests on it): add pcr to the tasks, or write `mitigate: auto`");
    }
  }
  if (d.pcr_low >= d.pcr_high) {
    const MapEntry* at = high != nullptr ? high : view->find("pcr_low");
    r.error(
        at->where, at->path,
        "pcr_low (" + canonical_number(d.pcr_low) + ") must be below pcr_high (" + canonical_number(d.pcr_high) + ")");
  }
}

void parse_execution(ParseContext& ctx, const MapEntry& entry, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  const auto view = r.map(entry.value, entry.where, entry.path, kExecutionKeys);
  if (!view) return;
  ExecutionSpec& x = grid->execution;
  if (const MapEntry* e = view->find("shard_size")) {
    if (auto v = r.integer(*e, 1, 1 << 20)) x.shard_size = *v;
  }
  if (const MapEntry* e = view->find("retries")) {
    if (auto v = r.integer(*e, 0, 100)) x.retries = *v;
  }
  if (const MapEntry* e = view->find("worker_timeout_s")) {
    if (auto v = r.integer(*e, 1)) x.worker_timeout_s = *v;
  }
  if (const MapEntry* e = view->find("grace_period_s")) {
    if (auto v = r.integer(*e, 0)) x.grace_period_s = *v;
  }
}

void parse_slurm(ParseContext& ctx, const MapEntry& entry, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  const auto view = r.map(entry.value, entry.where, entry.path, kSlurmKeys);
  if (!view) return;
  SlurmSpec s;
  if (const MapEntry* e = view->find("partition")) {
    if (auto v = r.string(*e)) s.partition = *v;
  }
  if (const MapEntry* e = view->find("nodes")) {
    if (auto v = r.integer(*e, 1, 100000)) s.nodes = *v;
  }
  if (const MapEntry* e = view->find("gpus_per_node")) {
    if (auto v = r.integer(*e, 0, 64)) s.gpus_per_node = *v;
  }
  if (const MapEntry* e = view->find("time")) {
    // sbatch --time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
    static const std::regex kTime(R"(\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2})");
    if (auto v = r.string(*e)) {
      if (!std::regex_match(*v, kTime)) {
        r.error(e->where, e->path, "time `" + *v + "` is not a SLURM time (e.g. \"24:00:00\" or \"2-00:00:00\")");
      }
      s.time = *v;
    }
  }
  if (const MapEntry* e = view->find("account"); e != nullptr && !e->value.IsNull()) {
    if (auto v = r.string(*e)) s.account = *v;
  }
  if (const MapEntry* e = view->find("extra")) {
    if (!e->value.IsSequence()) {
      r.error(e->where, e->path,
              "expected a list of sbatch options (e.g. [\"--qos=normal\"]), got " + describe(e->value));
    } else {
      std::size_t i = 0;
      for (const YAML::Node& item : e->value) {
        const std::string item_path = element(e->path, i++);
        if (auto v = r.string(item, location_of(item, e->where), item_path)) s.extra.push_back(*v);
      }
    }
  }
  grid->slurm = s;
}

void parse_exclude(ParseContext& ctx, const MapEntry& entry, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  if (!entry.value.IsSequence()) {
    r.error(entry.where, entry.path, "expected a list of rules, got " + describe(entry.value));
    return;
  }
  std::vector<std::string> model_names;
  for (const ModelSpec& m : grid->models) model_names.push_back(m.name);
  std::vector<std::string> kv_labels;
  for (const KvSpec& k : grid->kv_specs) kv_labels.push_back(kv_label(k));
  const auto views_of = [](const std::vector<std::string>& v) {
    return std::vector<std::string_view>(v.begin(), v.end());
  };
  std::vector<bool> named_unknown;  // per rule: already warned about an unknown name
  std::size_t i = 0;
  for (const YAML::Node& item : entry.value) {
    const std::string path = element(entry.path, i++);
    const auto view = r.map(item, location_of(item, entry.where), path, kExcludeKeys);
    if (!view) continue;
    if (view->entries.empty()) {
      if (item.IsMap() && item.size() == 0) r.error(view->where, path, "an empty rule would drop every cell");
      continue;
    }
    ExcludeRule rule;
    rule.where = view->where;
    bool ok = true, unknown = false;
    for (const MapEntry& e : view->entries) {
      ExcludeCondition condition;
      for (std::size_t k = 0; k < kExcludeKeys.size(); ++k) {
        if (kExcludeKeys[k] == e.key) condition.key = static_cast<ExcludeKey>(k);
      }
      std::vector<std::pair<YAML::Node, std::pair<SourceLocation, std::string>>> values;
      if (e.value.IsSequence()) {
        std::size_t j = 0;
        for (const YAML::Node& v : e.value) values.push_back({v, {location_of(v, e.where), element(e.path, j++)}});
        if (values.empty()) r.error(e.where, e.path, "an empty list matches nothing");
      } else {
        values.push_back({e.value, {e.where, e.path}});
      }
      for (const auto& [node, at] : values) {
        auto text = exclude_value(r, e.key, node, at.first, at.second);
        if (!text) {
          ok = false;
          continue;
        }
        // Names that match nothing are most likely typos: say which name was meant.
        std::vector<std::string> drafts = model_names;
        drafts.push_back("none");
        const std::vector<std::string>* known = e.key == "model"   ? &model_names
                                                : e.key == "draft" ? &drafts
                                                : e.key == "kv"    ? &kv_labels
                                                                   : nullptr;
        std::vector<std::string> bench_names;
        if (e.key == "benchmark") {
          for (const BenchmarkSpec& b : grid->benchmarks) bench_names.push_back(b.name);
          known = &bench_names;
        }
        if (known != nullptr && std::find(known->begin(), known->end(), *text) == known->end()) {
          const auto candidates = views_of(*known);
          r.warning(at.first, at.second,
                    "no " + e.key + " `" + *text + "` in this grid" + did_you_mean(*text, candidates));
          unknown = true;
        }
        condition.any_of.push_back(*text);
      }
      rule.conditions.push_back(std::move(condition));
    }
    if (!ok) continue;
    grid->exclude.push_back(std::move(rule));
    named_unknown.push_back(unknown);
  }
  if (!ctx.options.check_exclude_matches || r.diagnostics().has_errors() || grid->exclude.empty()) return;
  const ExpansionCounts counts = count_cells(*grid);
  for (std::size_t k = 0; k < grid->exclude.size(); ++k) {
    if (counts.rule_matches[k] == 0 && !named_unknown[k]) {
      r.warning(grid->exclude[k].where, element(entry.path, k), "this rule matches no cell");
    }
  }
  if (counts.cells == 0) r.error(entry.key_where, entry.path, "the exclude rules drop every cell of the grid");
}

}  // namespace kvsafe::orchestrator::detail
