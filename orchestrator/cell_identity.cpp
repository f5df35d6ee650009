#include "orchestrator/cell_identity.h"

#include <nlohmann/json.hpp>

#include "common/sha256.h"

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
  return j.dump();
}

std::string benchmark_identity_json(const BenchmarkSpec& benchmark) {
  nlohmann::json j = nlohmann::json::object();
  j["name"] = benchmark.name;
  // NOTE: only when set, so cells without a subset keep their ids.
  if (benchmark.subset) j["subset"] = *benchmark.subset;
  j["limit"] = optional_int(benchmark.limit);
  j["sample"] = optional_int(benchmark.sample);
  if (benchmark.sample) j["seed"] = benchmark.seed;
  if (benchmark.task == Task::kPerplexity) {
    j["max_length"] = benchmark.max_length;
    j["stride"] = benchmark.stride;
  }
  return j.dump();
}

std::string generation_identity_json(const GenerationSettings& generation) {
  nlohmann::json j = nlohmann::json::object();
  j["max_new_tokens"] = generation.max_new_tokens;
  j["batch_size"] = generation.batch_size;
  j["temperature"] = generation.temperature == 0.0 ? 0.0 : generation.temperature;
  j["top_p"] = generation.top_p;
  j["seed"] = generation.seed;
  j["system_prompt"] = optional_text(generation.system_prompt);
  return j.dump();
}

std::string compose_cell_json(std::string_view model_json, std::string_view kv_json, std::string_view benchmark_json,
                              std::string_view generation_json, Task task) {
  // Top-level keys in sorted order: benchmark, generation, kv, model, task, version.
  std::string out;
  out.reserve(model_json.size() + kv_json.size() + benchmark_json.size() + generation_json.size() + 96);
  out += "{\"benchmark\":";
  out += benchmark_json;
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
  return compose_cell_json(model_identity_json(cell.model), canonical_json(cell.kv),
                           benchmark_identity_json(cell.benchmark),
                           cell.generation ? generation_identity_json(*cell.generation) : "null", cell.task());
}

std::string cell_id_of(std::string_view canonical_json_text) {
  return sha256_hex(canonical_json_text);
}

}  // namespace kvsafe::orchestrator
