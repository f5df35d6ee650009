#include "orchestrator/cell_identity.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"
#include "common/sha256.h"
#include "eval/benchmark_table.h"
#include "orchestrator/grid_expansion.h"

namespace kvsafe::orchestrator {
namespace {

nlohmann::json optional_text(const std::optional<std::string>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json optional_int(const std::optional<std::int64_t>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

std::string canonical_number(double value) {
  // nlohmann writes the shortest text that reads back to the same double.
  return nlohmann::json(value == 0.0 ? 0.0 : value).dump();
}

std::string model_identity_json(const ModelSpec& model) {
  nlohmann::json j = nlohmann::json::object();
  j["name"] = model.name;
  j["dtype"] = to_string(model.dtype);
  j["chat_template"] = optional_text(model.chat_template);
  // NOTE: only when set, so models without their own system prompt keep their cell ids.
  if (model.system_prompt) j["system_prompt"] = *model.system_prompt;
  // NOTE: only when set, so unsteered models keep their cell ids.
  if (model.steer) {
    j["steer"] = {{"direction_sha256", model.steer->direction_sha256},
                  {"direction_cell", model.steer->direction_cell},
                  {"direction_model", model.steer->direction_model},
                  {"layer", model.steer->layer},
                  {"alpha", model.steer->alpha}};
  }
  return j.dump();
}

std::string benchmark_identity_json(const BenchmarkSpec& benchmark) {
  nlohmann::json j = nlohmann::json::object();
  j["name"] = benchmark.name;
  // NOTE: only when set, so cells without a subset keep their ids.
  if (benchmark.subset) j["subset"] = *benchmark.subset;
  j["limit"] = optional_int(benchmark.limit);
  j["sample"] = optional_int(benchmark.sample);
  // Calibration samples its classes whether or not `sample` is set (worker/cell_prompts.h).
  const eval::BenchmarkInfo* info = eval::find_benchmark(benchmark.name);
  if (benchmark.sample || (info != nullptr && info->per_class_prompt_count > 0)) j["seed"] = benchmark.seed;
  if (benchmark.task == Task::kPerplexity) {
    j["max_length"] = benchmark.max_length;
    j["stride"] = benchmark.stride;
  }
  // NOTE: only when set, so entries without it keep their cell ids.
  if (benchmark.max_new_tokens) j["max_new_tokens"] = *benchmark.max_new_tokens;
  // A conversations file by its bytes, never its path: the same file elsewhere is the same cell.
  if (benchmark.file) j["file_sha256"] = benchmark.file_sha256;
  return j.dump();
}

std::string generation_identity_json(const GenerationSettings& generation) {
  nlohmann::json j = nlohmann::json::object();
  j["max_new_tokens"] = generation.max_new_tokens;
  j["batch_size"] = generation.batch_size;
  j["temperature"] = generation.temperature == 0.0 ? 0.0 : generation.temperature;
  j["top_p"] = generation.top_p;
  j["seed"] = generation.seed;
  if (generation.samples > 1) j["samples"] = generation.samples;  // only then: other cells keep their ids
  j["system_prompt"] = optional_text(generation.system_prompt);
  // NOTE: only when on, so cells of grids without them keep their ids.
  if (generation.strip_prompts) j["strip_prompts"] = true;
  if (generation.clean_answers) j["clean_answers"] = true;
  if (generation.paper_bos) j["bos"] = "paper";
  if (generation.use_generation_config) j["generation_config"] = "model";
  if (generation.tokenizer_pad) j["pad_token"] = "tokenizer";
  if (generation.zero_padding_queries) j["padding_queries"] = "zero";
  if (generation.repetition_penalty) j["repetition_penalty"] = *generation.repetition_penalty;
  if (generation.top_k) j["top_k"] = *generation.top_k;
  // NOTE: only when set, so plain cells keep their ids; the draft by its whole model identity
  // (a steered or re-templated draft is another draft), never its path.
  if (generation.speculative) {
    j["speculative"] = {{"draft", nlohmann::json::parse(model_identity_json(generation.speculative->draft))},
                        {"draft_tokens", generation.speculative->draft_tokens},
                        {"quantize", to_string(generation.speculative->quantize)}};
  }
  return j.dump();
}

std::string compose_cell_json(std::string_view model_json, std::string_view kv_json, std::string_view benchmark_json,
                              std::string_view generation_json, Task task,
                              const std::vector<std::string>& derived_from) {
  // Top-level keys in sorted order: benchmark, generation, kv, model, task, version.
  std::string out;
  out.reserve(model_json.size() + kv_json.size() + benchmark_json.size() + generation_json.size() + 96);
  out += "{\"benchmark\":";
  out += benchmark_json;
  if (!derived_from.empty()) out += ",\"derived_from\":" + nlohmann::json(derived_from).dump();
  out += ",\"generation\":";
  out += generation_json;
  out += ",\"kv\":";
  out += kv_json;
  out += ",\"model\":";
  out += model_json;
  out += ",\"task\":\"";
  out += to_string(task);
  out += "\",\"version\":";
  out += std::to_string(kCellFormatVersion);
  out += '}';
  return out;
}

std::string canonical_json(const Cell& cell) {
  return compose_cell_json(
      model_identity_json(cell.model), canonical_json(cell.kv), benchmark_identity_json(cell.benchmark),
      cell.generation ? generation_identity_json(*cell.generation) : "null", cell.task(), cell.derived_from);
}

std::string cell_id_of(std::string_view canonical_json_text) {
  return sha256_hex(canonical_json_text);
}

}  // namespace kvsafe::orchestrator

namespace kvsafe::orchestrator {
namespace {

std::optional<std::int64_t> int_or_null(const nlohmann::json& j, const char* key) {
  const auto& v = j.at(key);
  if (v.is_null()) return std::nullopt;
  return v.get<std::int64_t>();
}

std::optional<std::string> text_or_null(const nlohmann::json& j, const char* key) {
  const auto& v = j.at(key);
  if (v.is_null()) return std::nullopt;
  return v.get<std::string>();
}

}  // namespace

Cell cell_from_canonical_json(std::string_view json, const GridSpec& grid, std::string_view expected_id) {
  Cell cell;
  try {
    const nlohmann::json j = nlohmann::json::parse(json);
    const auto task = parse_task(j.at("task").get<std::string>());
    KVSAFE_CHECK(task.has_value(), "unknown task ", j.at("task").dump());
    const std::string model_name = j.at("model").at("name").get<std::string>();
    const ModelSpec* model = grid.find_model(model_name);
    KVSAFE_CHECK(model != nullptr, "model `", model_name, "` is not in the grid ", grid.display_name);
    cell.model = *model;
    cell.model_index = static_cast<std::size_t>(model - grid.models.data());
    cell.kv = kv_spec_from_json(j.at("kv").dump());
    const nlohmann::json& b = j.at("benchmark");
    cell.benchmark.name = b.at("name").get<std::string>();
    cell.benchmark.task = *task;
    if (b.contains("subset")) cell.benchmark.subset = b.at("subset").get<std::string>();
    cell.benchmark.limit = int_or_null(b, "limit");
    cell.benchmark.sample = int_or_null(b, "sample");
    if (b.contains("seed")) cell.benchmark.seed = b.at("seed").get<std::int64_t>();
    if (b.contains("max_length")) cell.benchmark.max_length = b.at("max_length").get<std::int64_t>();
    if (b.contains("stride")) cell.benchmark.stride = b.at("stride").get<std::int64_t>();
    if (b.contains("max_new_tokens")) cell.benchmark.max_new_tokens = b.at("max_new_tokens").get<std::int64_t>();
    if (b.contains("file_sha256")) {
      // The file is this rank's grid's entry with those bytes.
      const std::string sha = b.at("file_sha256").get<std::string>();
      const auto entry = std::find_if(grid.benchmarks.begin(), grid.benchmarks.end(),
                                      [&](const BenchmarkSpec& e) { return e.file && e.file_sha256 == sha; });
      KVSAFE_CHECK(entry != grid.benchmarks.end(), "no conversations file of the grid ", grid.display_name,
                   " has sha256 ", sha.substr(0, 16));
      cell.benchmark.file = entry->file;
      cell.benchmark.file_sha256 = sha;
      cell.benchmark.file_prompts = entry->file_prompts;
    }
    if (const nlohmann::json& g = j.at("generation"); !g.is_null()) {
      GenerationSettings settings;
      settings.max_new_tokens = g.at("max_new_tokens").get<std::int64_t>();
      settings.batch_size = g.at("batch_size").get<std::int64_t>();
      settings.temperature = g.at("temperature").get<double>();
      settings.top_p = g.at("top_p").get<double>();
      settings.seed = g.at("seed").get<std::int64_t>();
      settings.samples = g.value("samples", std::int64_t{1});
      settings.system_prompt = text_or_null(g, "system_prompt");
      settings.strip_prompts = g.value("strip_prompts", false);
      settings.clean_answers = g.value("clean_answers", false);
      settings.paper_bos = g.value("bos", std::string("once")) == "paper";
      settings.use_generation_config = g.value("generation_config", std::string("ignore")) == "model";
      settings.tokenizer_pad = g.value("pad_token", std::string("eos")) == "tokenizer";
      settings.zero_padding_queries = g.value("padding_queries", std::string("attend_all")) == "zero";
      if (g.contains("repetition_penalty")) settings.repetition_penalty = g.at("repetition_penalty").get<double>();
      if (g.contains("top_k")) settings.top_k = g.at("top_k").get<std::int64_t>();
      if (g.contains("speculative")) {
        // The draft is this rank's grid's entry of that name (its identity checked by the id below).
        const nlohmann::json& sp = g.at("speculative");
        const std::string draft_name = sp.at("draft").at("name").get<std::string>();
        const ModelSpec* draft = grid.find_model(draft_name);
        KVSAFE_CHECK(draft != nullptr, "draft model `", draft_name, "` is not in the grid ", grid.display_name);
        const std::string quantize = sp.at("quantize").get<std::string>();
        KVSAFE_CHECK(quantize == "target" || quantize == "draft" || quantize == "both",
                     "unknown speculative quantize `", quantize, "`");
        settings.speculative = SpeculativeSettings{.draft = *draft,
                                                   .draft_tokens = sp.at("draft_tokens").get<std::int64_t>(),
                                                   .quantize = quantize == "draft"  ? SpeculativeQuantize::kDraft
                                                               : quantize == "both" ? SpeculativeQuantize::kBoth
                                                                                    : SpeculativeQuantize::kTarget};
      }
      cell.generation = settings;
    }
    if (j.contains("derived_from")) cell.derived_from = j.at("derived_from").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& error) {
    throw InputError(fmt::format("cell {}: not a cell's canonical JSON: {}", expected_id.substr(0, 16), error.what()));
  }
  cell.id = cell_id_of(canonical_json(cell));
  KVSAFE_CHECK(cell.id == expected_id, "cell ", expected_id.substr(0, 16), ": its JSON hashes to ",
               cell.id.substr(0, 16), " here (ranks built from different grids or versions?)");
  cell.kv_label = kv_label(cell.kv);
  EffectiveBitsOptions options;
  if (cell.model.layers) options.layers = *cell.model.layers;
  cell.effective_bits = effective_bits(cell.kv, options);
  cell.n_prompts = cell_index_count(cell.benchmark, cell.generation);
  return cell;
}

}  // namespace kvsafe::orchestrator
