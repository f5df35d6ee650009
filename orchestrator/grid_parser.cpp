// Grid YAML -> GridSpec: the document, the top-level keys, `name`, `description` and
// `models`. The other sections live in grid_sections.cpp and kv_entry_schema.cpp.

#include "orchestrator/grid_parser.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>

#include "common/error.h"
#include "common/sha256.h"
#include "eval/refusal_direction_file.h"
#include "orchestrator/grid_parser_internal.h"
#include "orchestrator/model_system_prompt.h"

namespace kvsafe::orchestrator {
namespace detail {
namespace {

constexpr std::array<std::string_view, 12> kTopKeys = {"name",     "description", "profile",    "models",
                                                       "kv_cache", "benchmarks",  "generation", "judge",
                                                       "diagnose", "execution",   "slurm",      "exclude"};
constexpr std::array<std::string_view, 2> kProfiles = {"kvsafe", "paper"};
constexpr std::array<std::string_view, 11> kModelKeys = {"name",
                                                         "path",
                                                         "chat_template",
                                                         "dtype",
                                                         "params",
                                                         "layers",
                                                         "steer",
                                                         "refusal_note",
                                                         "system_prompt",
                                                         "system_prompt_file",
                                                         "system_prompt_date"};
constexpr std::array<std::string_view, 3> kSteerKeys = {"direction_from", "layer", "alpha"};

// models[i].steer: {direction_from: FILE, layer: L, alpha: A}. The file is read here: its hash
// is part of every cell id of the model, and a wrong file or layer is an error before any run.
// models[].system_prompt / system_prompt_file / system_prompt_date (model_system_prompt.h).
// False when something was wrong (reported).
bool parse_model_system_prompt(ParseContext& ctx, const MapView& view, ModelSpec& model) {
  YamlReader& r = ctx.reader;
  const MapEntry* text_entry = view.find("system_prompt");
  const MapEntry* file_entry = view.find("system_prompt_file");
  const MapEntry* date_entry = view.find("system_prompt_date");
  if (text_entry != nullptr && text_entry->value.IsNull()) text_entry = nullptr;
  if (file_entry != nullptr && file_entry->value.IsNull()) file_entry = nullptr;
  if (text_entry != nullptr && file_entry != nullptr) {
    r.error(file_entry->key_where, file_entry->path, "give system_prompt or system_prompt_file, not both");
    return false;
  }
  if (date_entry != nullptr && !date_entry->value.IsNull()) {
    if (auto text = r.string(*date_entry, false)) {
      model.system_prompt_date = parse_iso_date(*text);
      if (!model.system_prompt_date) {
        r.error(date_entry->where, date_entry->path, "expected a date YYYY-MM-DD, got \"" + *text + "\"");
        return false;
      }
    } else {
      return false;
    }
  }
  std::optional<std::string> text;
  const MapEntry* source = text_entry != nullptr ? text_entry : file_entry;
  if (text_entry != nullptr) {
    text = r.string(*text_entry);
    if (!text) return false;
  } else if (file_entry != nullptr) {
    auto path_text = r.string(*file_entry, false);
    if (!path_text) return false;
    const auto resolved = expand_path(ctx, *path_text, file_entry->where, file_entry->path);
    if (!resolved) return false;
    std::ifstream in(*resolved, std::ios::binary);
    if (!in) {
      // NOTE: `kvsafe plan` runs without the model files; the prompt is then unknown, and the
      // cells it prints carry the file's path instead (run refuses: it needs the files).
      if (ctx.options.require_model_files) {
        r.error(file_entry->where, file_entry->path, "system prompt file not found: " + resolved->string());
        return false;
      }
      text = "<system prompt from " + resolved->string() + ">";
    } else {
      std::ostringstream bytes;
      bytes << in.rdbuf();
      text = bytes.str();
      // A text file's final newline is not part of the prompt (the template's default has none).
      if (!text->empty() && text->back() == '\n') text->pop_back();
      if (!text->empty() && text->back() == '\r') text->pop_back();
    }
  }
  if (!text) {
    if (model.system_prompt_date) {
      r.warning(date_entry->key_where, date_entry->path, "system_prompt_date without a system prompt does nothing");
    }
    return true;
  }
  if (has_date_placeholder(*text)) {
    if (!model.system_prompt_date) {
      r.error(source->where, source->path,
              "the system prompt has a date placeholder ({date}, {today} or {yesterday}); pin the date with "
              "system_prompt_date: YYYY-MM-DD (it is part of the prompt, so a run resumed another day must "
              "see the same one)");
      return false;
    }
    *text = substitute_prompt_date(*text, *model.system_prompt_date);
  }
  model.system_prompt = std::move(*text);
  return true;
}

std::optional<SteerSpec> parse_steer(ParseContext& ctx, const MapEntry& entry) {
  YamlReader& r = ctx.reader;
  const auto view = r.map(entry.value, entry.where, entry.path, kSteerKeys);
  if (!view) return std::nullopt;
  SteerSpec steer;
  steer.where = view->where;
  bool ok = r.require(*view, "direction_from");
  ok = r.require(*view, "layer") && ok;
  if (const MapEntry* e = view->find("alpha")) {
    if (auto alpha = r.number(*e)) {  // finite: the reader refuses .nan and .inf
      steer.alpha = *alpha;
    } else {
      ok = false;
    }
  }
  std::optional<std::int64_t> layer;
  if (const MapEntry* e = view->find("layer")) {
    layer = r.integer(*e, 0, 10000);
    if (layer) steer.layer = *layer;
    ok = ok && layer.has_value();
  }
  if (const MapEntry* e = view->find("direction_from")) {
    const auto text = r.string(*e, false);
    const auto resolved = text ? expand_path(ctx, *text, e->where, e->path) : std::nullopt;
    if (!resolved) return std::nullopt;
    steer.direction_text = *text;
    steer.direction_path = *resolved;
    try {
      const eval::RefusalDirectionFile file = eval::read_refusal_direction_file(*resolved);
      steer.direction_model = file.model;
      steer.direction_cell = file.cell_id;
      steer.direction_sha256 = sha256_file_hex(*resolved);
      const auto layers = static_cast<std::int64_t>(file.directions.size());
      if (layer && *layer >= layers) {
        r.error(view->find("layer")->where, view->find("layer")->path,
                "layer " + std::to_string(*layer) + " is not in the direction file, which has layers 0.." +
                    std::to_string(layers - 1));
        ok = false;
      }
    } catch (const Error& error) {
      r.error(e->where, e->path, error.what());
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return steer;
}
constexpr std::array<std::string_view, 4> kDtypes = {"auto", "float32", "bfloat16", "float16"};

// Whether `path` is what a model loader accepts: a file (GGUF, safetensors) or an HF
// folder with a config.json.
std::string model_path_problem(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return "";
  if (std::filesystem::is_directory(path, ec)) {
    if (std::filesystem::is_regular_file(path / "config.json", ec)) return "";
    return "model folder " + path.string() + " has no config.json";
  }
  return "model file not found: " + path.string();
}

void parse_model(ParseContext& ctx, const YAML::Node& node, SourceLocation where, const std::string& path,
                 std::map<std::string, SourceLocation>* names, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  const auto view = r.map(node, where, path, kModelKeys);
  if (!view) return;
  ModelSpec model;
  model.where = view->where;
  bool ok = r.require(*view, "name");
  ok = r.require(*view, "path") && ok;
  if (const MapEntry* e = view->find("name")) {
    if (auto name = r.string(*e)) {
      if (!is_simple_name(*name)) {
        r.error(e->where, e->path, "model name `" + *name + "` may only use letters, digits, `_`, `.` and `-`");
        ok = false;
      } else if (const auto first = names->find(*name); first != names->end()) {
        r.error(e->where, e->path,
                "duplicate model name `" + *name + "` (first at line " + std::to_string(first->second.line) + ")");
        ok = false;
      } else {
        names->emplace(*name, e->where);
      }
      model.name = *name;
    } else {
      ok = false;
    }
  }
  if (const MapEntry* e = view->find("path")) {
    if (auto text = r.string(*e, false)) {
      model.path_text = *text;
      model.path_where = e->where;
      if (auto resolved = expand_path(ctx, *text, e->where, e->path)) {
        model.path = *resolved;
        if (ctx.options.require_model_files) {
          if (const std::string problem = model_path_problem(model.path); !problem.empty()) {
            r.error(e->where, e->path, problem);
            ok = false;
          }
        }
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  if (const MapEntry* e = view->find("chat_template"); e != nullptr && !e->value.IsNull()) {
    if (auto text = r.string(*e, false)) {
      model.chat_template = *text;
      // A built-in template is a bare name; anything that looks like a file is a path.
      const bool is_file =
          text->find('/') != std::string::npos || text->ends_with(".jinja") || text->find("${") != std::string::npos;
      if (is_file) {
        if (auto resolved = expand_path(ctx, *text, e->where, e->path)) {
          model.chat_template_path = *resolved;
          std::error_code ec;
          if (ctx.options.require_model_files && !std::filesystem::is_regular_file(*resolved, ec)) {
            r.error(e->where, e->path, "chat template file not found: " + resolved->string());
            ok = false;
          }
        } else {
          ok = false;
        }
      }
    } else {
      ok = false;
    }
  }
  if (const MapEntry* e = view->find("dtype")) {
    if (auto text = r.choice(*e, kDtypes)) {
      for (DType d : {DType::kAuto, DType::kFloat32, DType::kBfloat16, DType::kFloat16}) {
        if (to_string(d) == *text) model.dtype = d;
      }
    } else {
      ok = false;
    }
  }
  if (const MapEntry* e = view->find("params")) {
    std::optional<double> count;
    if (e->value.IsScalar()) {
      const ScalarKind kind = scalar_kind(e->value);
      if (kind == ScalarKind::kInt || kind == ScalarKind::kFloat || kind == ScalarKind::kString) {
        count = parse_parameter_count(e->value.Scalar());
      }
    }
    if (!count || *count <= 0) {
      r.error(e->where, e->path, "expected a parameter count like 135M, 7.24B or 46.7e9, got " + describe(e->value));
      ok = false;
    } else {
      model.params = count;
    }
  }
  if (const MapEntry* e = view->find("layers")) {
    if (auto layers = r.integer(*e, 1, 10000)) {
      model.layers = static_cast<int>(*layers);
    } else {
      ok = false;
    }
  }
  if (const MapEntry* e = view->find("refusal_note"); e != nullptr && !e->value.IsNull()) {
    if (auto note = r.string(*e)) {
      model.refusal_note = *note;
    } else {
      ok = false;
    }
  }
  if (!parse_model_system_prompt(ctx, *view, model)) ok = false;
  if (const MapEntry* e = view->find("steer"); e != nullptr && !e->value.IsNull()) {
    model.steer = parse_steer(ctx, *e);
    ok = model.steer.has_value() && ok;
  }
  if (ok) grid->models.push_back(std::move(model));
}

}  // namespace

bool is_simple_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

std::optional<std::filesystem::path> expand_path(ParseContext& ctx, const std::string& text, SourceLocation where,
                                                 const std::string& path) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string::npos) {
      ctx.reader.error(where, path, "unterminated `${` in `" + text + "`");
      return std::nullopt;
    }
    const std::string name = text.substr(i + 2, close - i - 2);
    const bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                       std::all_of(name.begin(), name.end(),
                                   [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
    if (!valid) {
      ctx.reader.error(where, path, "`${" + name + "}` is not a valid environment variable reference");
      return std::nullopt;
    }
    std::string value;
    if (!ctx.env.lookup(name, &value)) {
      ctx.reader.error(where, path, "environment variable `" + name + "` is not set");
      return std::nullopt;
    }
    out += value;
    i = close + 1;
  }
  if (out.empty()) {
    ctx.reader.error(where, path, "path is empty");
    return std::nullopt;
  }
  std::filesystem::path result(out);
  if (result.is_relative()) result = ctx.base_dir / result;
  return result.lexically_normal();
}

void parse_models(ParseContext& ctx, const MapEntry& entry, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  if (!entry.value.IsSequence()) {
    r.error(entry.where, entry.path, "expected a list of models, got " + describe(entry.value));
    return;
  }
  if (entry.value.size() == 0) {
    r.error(entry.where, entry.path, "models is empty; list at least one model");
    return;
  }
  std::map<std::string, SourceLocation> names;
  std::size_t i = 0;
  for (const YAML::Node& item : entry.value) {
    const std::string path = element(entry.path, i++);
    parse_model(ctx, item, location_of(item, entry.where), path, &names, grid);
  }
}

}  // namespace detail

namespace {

using detail::MapEntry;
using detail::YamlReader;

constexpr std::int64_t kMaxGridCells = 10'000'000;

// Issue 25: a grid that measures refusals only on models noted to refuse rarely will print
// "undefined" for every flip; say so before the run, at the models key.
void warn_when_no_model_refuses(YamlReader& r, const detail::MapView& view, const GridSpec& grid) {
  const bool measures_refusals = std::any_of(grid.benchmarks.begin(), grid.benchmarks.end(),
                                             [](const BenchmarkSpec& b) { return b.task == Task::kRefusal; });
  if (!measures_refusals || grid.models.empty()) return;
  std::string notes;
  for (const ModelSpec& m : grid.models) {
    if (!m.refusal_note) return;
    notes += (notes.empty() ? "" : "; ") + m.name + ": " + *m.refusal_note;
  }
  const MapEntry* models = view.find("models");
  r.warning(models != nullptr ? models->where : SourceLocation{1, 1}, "models",
            "every model of this grid is noted to refuse rarely (" + notes +
                "), so its conditional flip rates will likely be undefined; add a model that refuses to measure "
                "alignment collapse");
}

void parse_document(detail::ParseContext& ctx, const std::string& text, GridSpec* grid) {
  YamlReader& r = ctx.reader;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // yaml-cpp marks are 0-based; -1 when it has no position.
    const SourceLocation where =
        e.mark.line < 0 ? SourceLocation{} : SourceLocation{e.mark.line + 1, e.mark.column + 1};
    r.error(where, "", "YAML syntax error: " + e.msg);
    return;
  }
  if (!root.IsDefined() || root.IsNull()) {
    r.error({1, 1}, "", "the grid file is empty; it needs at least name, models, kv_cache and benchmarks");
    return;
  }
  if (!root.IsMap()) {
    r.error(detail::location_of(root, {1, 1}), "",
            "a grid file is a mapping of keys (name, models, kv_cache, ...), got " + detail::describe(root));
    return;
  }
  const auto view = r.map(root, {1, 1}, "", detail::kTopKeys);
  if (!view) return;
  for (std::string_view key : {"name", "models", "kv_cache", "benchmarks"}) r.require(*view, key);
  if (const MapEntry* e = view->find("name")) {
    if (auto name = r.string(*e)) {
      if (!detail::is_simple_name(*name)) {
        r.error(e->where, e->path,
                "grid name `" + *name + "` may only use letters, digits, `_`, `.` and `-` (it names results/" +
                    "<name>.db)");
      }
      grid->name = *name;
    }
  }
  if (const MapEntry* e = view->find("description"); e != nullptr && !e->value.IsNull()) {
    if (auto description = r.string(*e)) grid->description = *description;
  }
  if (const MapEntry* e = view->find("profile")) {
    if (auto profile = r.choice(*e, detail::kProfiles))
      grid->profile = *profile == "paper" ? GridProfile::kPaper : GridProfile::kKvsafe;
  }
  // Order matters: kv_cache checks protect_layers against the models, judge may name a
  // model, and exclude is checked against everything else.
  if (const MapEntry* e = view->find("models")) detail::parse_models(ctx, *e, grid);
  // The profile's defaults for what the sections below leave unset (they read grid->profile).
  detail::apply_profile_defaults(ctx, grid);
  if (const MapEntry* e = view->find("kv_cache")) detail::parse_kv_cache(ctx, *e, grid);
  if (const MapEntry* e = view->find("benchmarks")) detail::parse_benchmarks(ctx, *e, grid);
  if (const MapEntry* e = view->find("generation")) {
    detail::parse_generation(ctx, *e, grid);
  } else {
    grid->generations = {default_generation(grid->profile)};
  }
  if (const MapEntry* e = view->find("judge")) detail::parse_judge(ctx, *e, grid);
  if (const MapEntry* e = view->find("diagnose")) detail::parse_diagnose(ctx, *e, grid);
  if (const MapEntry* e = view->find("execution")) detail::parse_execution(ctx, *e, grid);
  if (const MapEntry* e = view->find("slurm")) detail::parse_slurm(ctx, *e, grid);
  detail::check_shards_hold_whole_batches(ctx, view->find("execution"), *grid);
  detail::check_profile_files(ctx, *grid);
  // NOTE: expansion materializes every cell; a grid this large is a mistake (a sweep too
  // many), and walking it would stall `kvsafe plan`.
  const double product = static_cast<double>(grid->models.size()) * static_cast<double>(grid->kv_specs.size()) *
                         static_cast<double>(grid->benchmarks.size()) * static_cast<double>(grid->generations.size());
  if (product > static_cast<double>(kMaxGridCells)) {
    r.error({1, 1}, "",
            "the grid expands to " + std::to_string(static_cast<long long>(product)) + " cells, more than " +
                std::to_string(kMaxGridCells) + "; split it into several grids");
  }
  // Exclude rules are always checked; their match counts only on an error-free grid.
  if (const MapEntry* e = view->find("exclude")) detail::parse_exclude(ctx, *e, grid);
  warn_when_no_model_refuses(r, *view, *grid);
}

}  // namespace

ParseResult parse_grid_text(std::string text, std::string display_name, const Environment& env,
                            const GridOptions& options) {
  ParseResult result;
  YamlReader reader(display_name, &result.diagnostics);
  std::filesystem::path base_dir = options.base_dir;
  if (base_dir.empty()) {
    std::error_code ec;
    base_dir = std::filesystem::current_path(ec);
  }
  detail::ParseContext ctx{reader, env, options, base_dir};
  GridSpec grid;
  grid.display_name = display_name;
  grid.base_dir = base_dir;
  parse_document(ctx, text, &grid);
  if (!result.diagnostics.has_errors()) result.grid = std::move(grid);
  return result;
}

ParseResult parse_grid_file(const std::filesystem::path& path, const Environment& env, const GridOptions& options) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || std::filesystem::is_directory(path, ec)) {
    ParseResult result;
    result.diagnostics.add_error(path.string(), 0, 0, "", "cannot read the grid file");
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  GridOptions file_options = options;
  file_options.base_dir = std::filesystem::absolute(path, ec).parent_path();
  return parse_grid_text(text.str(), path.string(), env, file_options);
}

}  // namespace kvsafe::orchestrator
