#pragma once
// Internal to orchestrator/: the grid parser's sections, one function per top-level key,
// sharing a ParseContext. Each reports problems to the context's reader and fills what
// it could read into the GridSpec.

#include <filesystem>
#include <optional>
#include <string>

#include "common/environment.h"
#include "orchestrator/grid_parser.h"
#include "orchestrator/grid_spec.h"
#include "orchestrator/yaml_reader.h"

namespace kvsafe::orchestrator::detail {

struct ParseContext {
  YamlReader& reader;
  const Environment& env;
  const GridOptions& options;
  std::filesystem::path base_dir;  // relative paths resolve against this
};

// ${VAR} expansion (Environment::lookup; an unset or malformed reference is an error at
// `where`), then relative paths resolved against ctx.base_dir. nullopt on error.
std::optional<std::filesystem::path> expand_path(ParseContext& ctx, const std::string& text, SourceLocation where,
                                                 const std::string& path);

// True when `name` is a non-empty run of [A-Za-z0-9_.-].
bool is_simple_name(std::string_view name);

void parse_models(ParseContext& ctx, const MapEntry& entry, GridSpec* grid);
void parse_kv_cache(ParseContext& ctx, const MapEntry& entry, GridSpec* grid);  // after parse_models
void parse_benchmarks(ParseContext& ctx, const MapEntry& entry, GridSpec* grid);
void parse_generation(ParseContext& ctx, const MapEntry& entry, GridSpec* grid);
void parse_judge(ParseContext& ctx, const MapEntry& entry, GridSpec* grid);  // after parse_models
void parse_diagnose(ParseContext& ctx, const MapEntry& entry, GridSpec* grid);
void parse_execution(ParseContext& ctx, const MapEntry& entry, GridSpec* grid);
void parse_slurm(ParseContext& ctx, const MapEntry& entry, GridSpec* grid);
void parse_exclude(ParseContext& ctx, const MapEntry& entry, GridSpec* grid);  // after the sections above

// `profile: paper`'s defaults, set before the sections that may override them (after
// parse_models: the keyword judge's spaceless fallback names the grid's Yi models).
void apply_profile_defaults(ParseContext& ctx, GridSpec* grid);
// A shard that does not hold whole batches changes their composition, hence every batch-coupled
// statistic (per-tensor and per-channel scales span the batch): an error under the paper
// profile, a warning otherwise. `execution` is the section's entry, when the grid has one.
void check_shards_hold_whole_batches(ParseContext& ctx, const MapEntry* execution, const GridSpec& grid);
// The data files `profile: paper` points the judge at exist (under require_model_files: `run`).
void check_profile_files(ParseContext& ctx, const GridSpec& grid);

}  // namespace kvsafe::orchestrator::detail
