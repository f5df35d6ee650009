#include "modelfile/generation_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "modelfile/model_file_error.h"
#include "modelfile/model_json.h"

namespace kvsafe::engine {
namespace {

constexpr std::uint64_t kMaxBytes = 1 << 20;

double positive_number(const nlohmann::json& j, const char* key, const std::filesystem::path& source) {
  const nlohmann::json& v = j.at(key);
  if (!v.is_number()) throw ModelFileError(source, key, "expected a number, got " + v.dump());
  const double value = v.get<double>();
  if (!(value > 0)) throw ModelFileError(source, key, "must be > 0, got " + v.dump());
  return value;
}

std::int64_t token_id(const nlohmann::json& v, const char* key, const std::filesystem::path& source) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
    throw ModelFileError(source, key, "expected a token id (an integer >= 0), got " + v.dump());
  }
  return v.get<std::int64_t>();
}

}  // namespace

GenerationConfig parse_generation_config(const std::string& json_text, const std::filesystem::path& source) {
  const nlohmann::json j = parse_model_json(json_text, source, 0, "generation config");
  if (!j.is_object()) throw ModelFileError(source, "generation config", "expected a JSON object");
  GenerationConfig config;
  config.source = source.string();
  if (j.contains("repetition_penalty") && !j.at("repetition_penalty").is_null()) {
    config.repetition_penalty = positive_number(j, "repetition_penalty", source);
  }
  if (j.contains("temperature") && !j.at("temperature").is_null()) {
    config.temperature = positive_number(j, "temperature", source);
  }
  if (j.contains("top_p") && !j.at("top_p").is_null()) config.top_p = positive_number(j, "top_p", source);
  if (j.contains("top_k") && !j.at("top_k").is_null()) config.top_k = token_id(j.at("top_k"), "top_k", source);
  if (j.contains("do_sample") && j.at("do_sample").is_boolean()) config.do_sample = j.at("do_sample").get<bool>();
  if (j.contains("eos_token_id") && !j.at("eos_token_id").is_null()) {
    const nlohmann::json& eos = j.at("eos_token_id");
    if (eos.is_array()) {
      for (const nlohmann::json& id : eos) config.eos_token_ids.push_back(token_id(id, "eos_token_id", source));
    } else {
      config.eos_token_ids.push_back(token_id(eos, "eos_token_id", source));
    }
  }
  return config;
}

GenerationConfig read_generation_config(const std::filesystem::path& model_path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_path, ec)) return {};
  const std::filesystem::path file = model_path / "generation_config.json";
  if (!std::filesystem::is_regular_file(file, ec)) return {};
  return parse_generation_config(read_small_file(file, kMaxBytes), file);
}

std::string describe(const GenerationConfig& config) {
  std::string out;
  const auto add = [&](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (config.repetition_penalty) add(fmt::format("repetition_penalty {}", *config.repetition_penalty));
  if (!config.eos_token_ids.empty()) add(fmt::format("eos [{}]", fmt::join(config.eos_token_ids, ", ")));
  if (config.top_k) add(fmt::format("top_k {}", *config.top_k));
  if (config.temperature) add(fmt::format("temperature {}", *config.temperature));
  if (config.top_p) add(fmt::format("top_p {}", *config.top_p));
  return out.empty() ? "none" : out;
}

}  // namespace kvsafe::engine
