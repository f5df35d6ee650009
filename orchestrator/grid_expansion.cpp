#include "orchestrator/grid_expansion.h"

#include <algorithm>
#include <cstdint>
#include <unordered_set>

#include "orchestrator/cell_identity.h"

namespace kvsafe::orchestrator {
namespace {

// The values a cell has for an exclude key, in canonical text; empty when the key does
// not apply (bits of `none`, temperature of a perplexity cell). Only the parts the key
// depends on are read; the others may be null.
std::vector<std::string> part_values(ExcludeKey key, const ModelSpec* model, const KvSpec* kv,
                                     const BenchmarkSpec* benchmark, const GenerationSettings* generation) {
  const bool is_int = kv != nullptr && kv->scheme == KvScheme::kInt;
  const bool quantizes = kv != nullptr && kv->scheme != KvScheme::kNone;
  switch (key) {
    case ExcludeKey::kModel:
      return {model->name};
    case ExcludeKey::kBenchmark:
      return {benchmark->name};
    case ExcludeKey::kTask:
      return {std::string(to_string(benchmark->task))};
    case ExcludeKey::kKv: {
      KvSpec unnamed = *kv;
      unnamed.name.clear();
      return {kv_label(*kv), kv_label(unnamed)};
    }
    case ExcludeKey::kScheme:
      return {std::string(to_string(kv->scheme))};
    case ExcludeKey::kBits:
      if (is_int || kv->scheme == KvScheme::kKivi) return {std::to_string(kv->bits)};
      return {};
    case ExcludeKey::kSymmetric:
      if (is_int) return {kv->symmetric ? "true" : "false"};
      return {};
    case ExcludeKey::kGranularity:
      if (is_int && kv->key_granularity == kv->value_granularity) return {std::string(to_string(kv->key_granularity))};
      return {};
    case ExcludeKey::kKeyGranularity:
      if (is_int) return {std::string(to_string(kv->key_granularity))};
      return {};
    case ExcludeKey::kValueGranularity:
      if (is_int) return {std::string(to_string(kv->value_granularity))};
      return {};
    case ExcludeKey::kGroupSize:
      if (kv->group_size > 0) return {std::to_string(kv->group_size)};
      return {};
    case ExcludeKey::kResidual:
      if (quantizes) return {std::to_string(kv->residual)};
      return {};
    case ExcludeKey::kPlacement:
      if (quantizes) return {std::string(to_string(kv->placement))};
      return {};
    case ExcludeKey::kTemperature:
      if (generation != nullptr) return {canonical_number(generation->temperature)};
      return {};
    case ExcludeKey::kSeed:
      if (generation != nullptr) return {std::to_string(generation->seed)};
      return {};
    case ExcludeKey::kDraft:
      if (generation == nullptr) return {};
      return {generation->speculative ? generation->speculative->draft.name : std::string("none")};
  }
  return {};
}

enum class Dimension { kModel, kKv, kBenchmark, kGeneration };

Dimension dimension_of(ExcludeKey key) {
  switch (key) {
    case ExcludeKey::kModel:
      return Dimension::kModel;
    case ExcludeKey::kBenchmark:
    case ExcludeKey::kTask:
      return Dimension::kBenchmark;
    case ExcludeKey::kTemperature:
    case ExcludeKey::kSeed:
    case ExcludeKey::kDraft:
      return Dimension::kGeneration;
    default:
      return Dimension::kKv;
  }
}

bool condition_holds(const ExcludeCondition& c, const ModelSpec* model, const KvSpec* kv,
                     const BenchmarkSpec* benchmark, const GenerationSettings* generation) {
  for (const std::string& value : part_values(c.key, model, kv, benchmark, generation)) {
    if (std::find(c.any_of.begin(), c.any_of.end(), value) != c.any_of.end()) return true;
  }
  return false;
}

// Exclude rules evaluated once per part: a rule matches a cell iff its conditions hold
// on each of the cell's parts, which keeps a 100k-cell expansion linear in the parts.
class ExcludeMatcher {
 public:
  explicit ExcludeMatcher(const GridSpec& grid) {
    const std::size_t n_gen = grid.generations.size();
    for (const ExcludeRule& rule : grid.exclude) {
      Tables t;
      t.model.assign(grid.models.size(), 1);
      t.kv.assign(grid.kv_specs.size(), 1);
      t.benchmark.assign(grid.benchmarks.size(), 1);
      t.generation.assign(n_gen + 1, 1);  // last slot: no generation
      for (const ExcludeCondition& c : rule.conditions) {
        switch (dimension_of(c.key)) {
          case Dimension::kModel:
            for (std::size_t i = 0; i < grid.models.size(); ++i)
              t.model[i] &= condition_holds(c, &grid.models[i], nullptr, nullptr, nullptr);
            break;
          case Dimension::kKv:
            for (std::size_t i = 0; i < grid.kv_specs.size(); ++i)
              t.kv[i] &= condition_holds(c, nullptr, &grid.kv_specs[i], nullptr, nullptr);
            break;
          case Dimension::kBenchmark:
            for (std::size_t i = 0; i < grid.benchmarks.size(); ++i)
              t.benchmark[i] &= condition_holds(c, nullptr, nullptr, &grid.benchmarks[i], nullptr);
            break;
          case Dimension::kGeneration:
            for (std::size_t i = 0; i < n_gen; ++i)
              t.generation[i] &= condition_holds(c, nullptr, nullptr, nullptr, &grid.generations[i]);
            t.generation[n_gen] = 0;
            break;
        }
      }
      tables_.push_back(std::move(t));
    }
    no_generation_ = n_gen;
  }

  // generation: index, or nullopt for tasks that do not generate.
  bool matches(std::size_t rule, std::size_t m, std::size_t k, std::size_t b, std::optional<std::size_t> g) const {
    const Tables& t = tables_[rule];
    return t.model[m] && t.kv[k] && t.benchmark[b] && t.generation[g.value_or(no_generation_)];
  }
  std::size_t rules() const { return tables_.size(); }

 private:
  struct Tables {
    std::vector<char> model, kv, benchmark, generation;
  };
  std::vector<Tables> tables_;
  std::size_t no_generation_ = 0;
};

// Calls visit(m, k, b, g) for every cell of the product in expansion order.
template <typename Visit>
void for_each_cell(const GridSpec& grid, Visit visit) {
  for (std::size_t m = 0; m < grid.models.size(); ++m) {
    for (std::size_t k = 0; k < grid.kv_specs.size(); ++k) {
      for (std::size_t b = 0; b < grid.benchmarks.size(); ++b) {
        if (!task_generates(grid.benchmarks[b].task)) {
          visit(m, k, b, std::optional<std::size_t>());
          continue;
        }
        for (std::size_t g = 0; g < grid.generations.size(); ++g) visit(m, k, b, std::optional<std::size_t>(g));
      }
    }
  }
}

}  // namespace

bool task_generates(Task task) {
  return task != Task::kPerplexity && task != Task::kRefusalDirection && task != Task::kKeyMagnitudes;
}

std::int64_t prompt_count(const BenchmarkSpec& benchmark) {
  std::int64_t n = 0;
  if (benchmark.task == Task::kPerplexity) {
    n = perplexity_windows(kWikitextPlanTokens, benchmark.max_length, benchmark.stride);
  } else if (const BenchmarkInfo* info = find_benchmark(benchmark.name)) {
    if (info->per_class_prompt_count > 0) {  // calibration: limit, then sample, per class
      std::int64_t per_class = std::min(info->per_class_prompt_count, benchmark.limit.value_or(INT64_MAX));
      per_class = std::min(per_class, benchmark.sample.value_or(info->default_draw / 2));
      return 2 * per_class;
    }
    n = benchmark.file ? benchmark.file_prompts : info->plan_prompt_count();
    if (benchmark.subset) {
      const SubsetInfo* subset = find_subset(*info, *benchmark.subset);
      n = subset != nullptr ? subset->prompt_count : 0;
    }
  }
  if (benchmark.limit) n = std::min(n, *benchmark.limit);
  if (benchmark.sample) n = std::min(n, *benchmark.sample);
  return n;
}

std::int64_t cell_index_count(const BenchmarkSpec& benchmark, const std::optional<GenerationSettings>& generation) {
  return prompt_count(benchmark) * (generation ? generation->samples : 1);
}

bool rule_matches(const ExcludeRule& rule, const ModelSpec& model, const KvSpec& kv, const BenchmarkSpec& benchmark,
                  const GenerationSettings* generation) {
  return std::all_of(rule.conditions.begin(), rule.conditions.end(), [&](const ExcludeCondition& c) {
    return condition_holds(c, &model, &kv, &benchmark, generation);
  });
}

std::vector<Cell> expand_grid(const GridSpec& grid) {
  const ExcludeMatcher matcher(grid);
  // Each part's canonical JSON and label is computed once, not once per cell.
  std::vector<std::string> model_json, kv_json, kv_labels, benchmark_json, generation_json;
  for (const ModelSpec& m : grid.models) model_json.push_back(model_identity_json(m));
  for (const KvSpec& k : grid.kv_specs) {
    kv_json.push_back(canonical_json(k));
    kv_labels.push_back(kv_label(k));
  }
  for (const BenchmarkSpec& b : grid.benchmarks) benchmark_json.push_back(benchmark_identity_json(b));
  for (const GenerationSettings& g : grid.generations) generation_json.push_back(generation_identity_json(g));
  std::vector<std::vector<double>> bits(grid.models.size());
  for (std::size_t m = 0; m < grid.models.size(); ++m) {
    EffectiveBitsOptions options;
    if (grid.models[m].layers) options.layers = *grid.models[m].layers;
    for (const KvSpec& k : grid.kv_specs) bits[m].push_back(effective_bits(k, options));
  }
  std::vector<std::int64_t> prompts;
  for (const BenchmarkSpec& b : grid.benchmarks) prompts.push_back(prompt_count(b));

  std::vector<Cell> cells;
  std::unordered_set<std::string> seen;
  for_each_cell(grid, [&](std::size_t m, std::size_t k, std::size_t b, std::optional<std::size_t> g) {
    for (std::size_t r = 0; r < matcher.rules(); ++r) {
      if (matcher.matches(r, m, k, b, g)) return;
    }
    Cell cell;
    // A benchmark entry's own generation length replaces the generation section's.
    std::optional<GenerationSettings> generation;
    if (g) generation = grid.generations[*g];
    std::string overridden;
    if (generation && grid.benchmarks[b].max_new_tokens) {
      generation->max_new_tokens = *grid.benchmarks[b].max_new_tokens;
      overridden = generation_identity_json(*generation);
    }
    cell.id = cell_id_of(compose_cell_json(model_json[m], kv_json[k], benchmark_json[b],
                                           !g                   ? std::string_view("null")
                                           : overridden.empty() ? std::string_view(generation_json[*g])
                                                                : std::string_view(overridden),
                                           grid.benchmarks[b].task));
    if (!seen.insert(cell.id).second) return;  // the same cell reached twice (e.g. identical benchmark entries)
    cell.model = grid.models[m];
    cell.kv = grid.kv_specs[k];
    cell.benchmark = grid.benchmarks[b];
    cell.generation = generation;
    cell.model_index = m;
    cell.kv_index = k;
    cell.benchmark_index = b;
    cell.generation_index = g;
    cell.kv_label = kv_labels[k];
    cell.effective_bits = bits[m][k];
    cell.n_prompts = prompts[b] * (generation ? generation->samples : 1);
    cells.push_back(std::move(cell));
  });
  return cells;
}

ExpansionCounts count_cells(const GridSpec& grid) {
  const ExcludeMatcher matcher(grid);
  ExpansionCounts counts;
  counts.rule_matches.assign(matcher.rules(), 0);
  for_each_cell(grid, [&](std::size_t m, std::size_t k, std::size_t b, std::optional<std::size_t> g) {
    bool excluded = false;
    for (std::size_t r = 0; r < matcher.rules(); ++r) {
      if (matcher.matches(r, m, k, b, g)) {
        ++counts.rule_matches[r];
        excluded = true;
      }
    }
    if (!excluded) ++counts.cells;
  });
  return counts;
}

}  // namespace kvsafe::orchestrator
