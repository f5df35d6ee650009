// Finding a model's chat template string (GGUF metadata, an HF folder, a
// tokenizer_config.json, a .jinja file) and choosing its ChatTemplate.

#include <array>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "modelfile/gguf_reader.h"
#include "text/chat_template.h"

namespace kvsafe::engine {
namespace fs = std::filesystem;
namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  KVSAFE_CHECK(in.good(), "cannot open ", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  KVSAFE_CHECK(!in.bad(), "cannot read ", path.string());
  return std::move(text).str();
}

bool is_gguf(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<char, 4> magic{};
  in.read(magic.data(), magic.size());
  return in.gcount() == 4 && std::string_view(magic.data(), 4) == "GGUF";
}

// tokenizer_config.json's chat_template: a string, or (transformers >= 4.38) a list of
// {"name", "template"} objects, of which "default" is what apply_chat_template uses when
// no tools are given.
std::optional<std::string> template_from_tokenizer_config(const fs::path& path) {
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(read_text(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path.string() + ": not valid JSON: " + e.what());
  }
  KVSAFE_CHECK(config.is_object(), path.string(), ": expected a JSON object");
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  KVSAFE_CHECK(it->is_array(), path.string(), ": key chat_template must be a string or a list of {name, template}");
  std::string names;
  for (const auto& entry : *it) {
    KVSAFE_CHECK(entry.is_object() && entry.contains("name") && entry["name"].is_string() &&
                     entry.contains("template") && entry["template"].is_string(),
                 path.string(),
                 ": key chat_template: each list entry must be {\"name\": string, \"template\": string}");
    const std::string name = entry["name"].get<std::string>();
    if (name == "default") return entry["template"].get<std::string>();
    names += (names.empty() ? "" : ", ") + name;
  }
  throw InputError(path.string() + ": key chat_template lists named templates (" + names +
                   ") but none named \"default\"");
}

}  // namespace

std::optional<std::string> read_chat_template(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    // NOTE: transformers >= 4.43 saves the template as chat_template.jinja beside the
    // tokenizer files and prefers it over tokenizer_config.json when both exist.
    if (fs::is_regular_file(path / "chat_template.jinja", ec)) return read_text(path / "chat_template.jinja");
    const fs::path config = path / "tokenizer_config.json";
    KVSAFE_CHECK(fs::is_regular_file(config, ec), path.string(),
                 ": neither chat_template.jinja nor tokenizer_config.json is there");
    return template_from_tokenizer_config(config);
  }
  KVSAFE_CHECK(fs::is_regular_file(path, ec), "chat template source ", path.string(), " does not exist");
  if (is_gguf(path)) return GgufFile::open(path)->get_string("tokenizer.chat_template");
  if (path.extension() == ".json") return template_from_tokenizer_config(path);
  // Anything else is read as the template text itself (a .jinja file).
  return read_text(path);
}

ChatTemplate load_chat_template(const fs::path& model_path, const ChatTemplateLoadOptions& options) {
  if (!options.name.empty()) return ChatTemplate::by_name(options.name);
  const fs::path source = options.template_file.empty() ? model_path : options.template_file;
  const std::optional<std::string> text = read_chat_template(source);
  KVSAFE_CHECK(text.has_value(), source.string(),
               " has no chat template; set chat_template to a built-in name (see chat_template_names())");
  try {
    return ChatTemplate::recognize(*text);
  } catch (const InputError& e) {
    throw InputError(source.string() + ": " + e.what());
  }
}

}  // namespace kvsafe::engine
