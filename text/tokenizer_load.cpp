// Tokenizer::load and read_gguf_tokenizer_metadata: the file-facing ends of the
// tokenizer (declared in text/tokenizer.h and text/tokenizer_gguf.h).

#include <nlohmann/json.hpp>

#include <fstream>

#include "common/error.h"
#include "modelfile/gguf_reader.h"
#include "text/tokenizer.h"
#include "text/tokenizer_gguf.h"
#include "text/tokenizer_json.h"

namespace kvsafe::engine {
namespace {

bool has_gguf_magic(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string_view(magic, 4) == "GGUF";
}

// tokenizer_config.json beside a tokenizer.json names the BOS/EOS/pad tokens (as text, or as
// {"content": ...}); tokenizer.json itself only knows the ones its post-processor adds.
void read_special_names(const std::filesystem::path& config_path, TokenizerData& data) {
  std::ifstream in(config_path);
  if (!in.good()) return;
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& error) {
    throw InputError(config_path.string() + ": not valid JSON: " + error.what());
  }
  const auto lookup = [&](const char* key) -> std::optional<TokenId> {
    if (!config.contains(key)) return std::nullopt;
    const nlohmann::json& value = config.at(key);
    std::string name;
    if (value.is_string()) {
      name = value.get<std::string>();
    } else if (value.is_object() && value.contains("content") && value.at("content").is_string()) {
      name = value.at("content").get<std::string>();
    } else {
      return std::nullopt;
    }
    for (const AddedToken& added : data.added_tokens) {
      if (added.content == name) return added.id;
    }
    for (std::size_t i = 0; i < data.tokens.size(); ++i) {
      if (data.tokens[i] == name) return static_cast<TokenId>(i);
    }
    throw InputError(config_path.string() + ": " + key + " \"" + name + "\" is not a token of the tokenizer");
  };
  if (!data.bos_id) data.bos_id = lookup("bos_token");
  if (!data.eos_id) data.eos_id = lookup("eos_token");
  if (!data.pad_id) data.pad_id = lookup("pad_token");
}

}  // namespace

GgufTokenizerMetadata read_gguf_tokenizer_metadata(const GgufFile& file, const std::string& source) {
  GgufTokenizerMetadata m;
  m.source = source;
  m.model = file.get_string("tokenizer.ggml.model").value_or("");
  m.pre = file.get_string("tokenizer.ggml.pre").value_or("");
  m.tokens = file.get_string_array("tokenizer.ggml.tokens");
  for (const double score : file.get_float_array("tokenizer.ggml.scores"))
    m.scores.push_back(static_cast<float>(score));
  m.token_types = file.get_int_array("tokenizer.ggml.token_type");
  m.merges = file.get_string_array("tokenizer.ggml.merges");
  m.bos_id = file.get_int("tokenizer.ggml.bos_token_id");
  m.eos_id = file.get_int("tokenizer.ggml.eos_token_id");
  m.pad_id = file.get_int("tokenizer.ggml.padding_token_id");
  m.unk_id = file.get_int("tokenizer.ggml.unknown_token_id");
  m.add_bos = file.get_bool("tokenizer.ggml.add_bos_token");
  m.add_eos = file.get_bool("tokenizer.ggml.add_eos_token");
  m.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix");
  return m;
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::filesystem::path& path) {
  std::filesystem::path file = path;
  if (std::filesystem::is_directory(path)) file = path / "tokenizer.json";
  KVSAFE_CHECK(std::filesystem::is_regular_file(file), file.string(), ": no such tokenizer file");
  if (has_gguf_magic(file)) {
    const std::unique_ptr<GgufFile> gguf = GgufFile::open(file);
    return create(tokenizer_data_from_gguf(read_gguf_tokenizer_metadata(*gguf, file.string())));
  }
  TokenizerData data = load_tokenizer_json(file);
  read_special_names(file.parent_path() / "tokenizer_config.json", data);
  return create(data);
}

}  // namespace kvsafe::engine
