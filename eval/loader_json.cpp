// Loader for the refusal_direction calibration splits (JSON arrays of objects).

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "eval/prompt_loaders.h"

namespace kvsafe::eval::detail {

std::vector<Prompt> load_prompt_json(const std::filesystem::path& data_dir, std::string_view relative_path,
                                     bool harmful) {
  const std::string bytes = read_file_bytes(data_dir / relative_path);
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::parse_error& error) {
    KVSAFE_CHECK(false, relative_path, ": not valid JSON at byte ", error.byte, ": ", error.what());
  }
  KVSAFE_CHECK(document.is_array(), relative_path, ": expected a JSON array of {\"instruction\", \"category\"}");
  const std::string stem = std::filesystem::path(relative_path).stem().string();
  std::vector<Prompt> prompts;
  prompts.reserve(document.size());
  for (std::size_t i = 0; i < document.size(); ++i) {
    const nlohmann::json& entry = document[i];
    KVSAFE_CHECK(entry.is_object() && entry.contains("instruction") && entry["instruction"].is_string(), relative_path,
                 ": entry ", i, " has no string \"instruction\"");
    Prompt prompt;
    prompt.text = entry["instruction"].get<std::string>();
    prompt.prompt_id = fmt::format("{}-{:05}", stem, i + 1);
    prompt.harmful = harmful;
    prompt.subset = stem;
    if (entry.contains("category") && entry["category"].is_string()) {
      prompt.category = entry["category"].get<std::string>();
    }
    finish_prompt(prompt, relative_path, 0);
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

}  // namespace kvsafe::eval::detail
