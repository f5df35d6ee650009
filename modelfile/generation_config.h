#pragma once
// A Hugging Face model folder's generation_config.json: the decoding defaults transformers'
// generate() applies on top of its own (issue 20 item 2), which the paper's runs therefore used:
// repetition_penalty (applied even to greedy decoding: Qwen2.5 ships 1.05), the end tokens
// (eos_token_id, a number or a list: Llama-3.1's <|eom_id|>, Phi-3.5's end tokens) and, for
// sampling, top_k (transformers' own default, 50, when the file has none), temperature and top_p.
// GGUF files carry no such file; a folder without one has all fields empty.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kvsafe::engine {

struct GenerationConfig {
  std::optional<double> repetition_penalty{};
  std::vector<std::int64_t> eos_token_ids{};  // empty: none listed
  std::optional<std::int64_t> top_k{};
  std::optional<double> temperature{};
  std::optional<double> top_p{};
  std::optional<bool> do_sample{};
  std::string source{};  // the file it came from; "" when there was none
};

// Reads `model_path`/generation_config.json when `model_path` is a folder that has one; an
// empty GenerationConfig otherwise (GGUF files, folders without the file). Throws
// ModelFileError naming the file and key for malformed JSON or a value of the wrong type or
// range (repetition_penalty <= 0, top_k < 0, an eos id < 0).
GenerationConfig read_generation_config(const std::filesystem::path& model_path);

// Parses the text of one; `source` names it in errors.
GenerationConfig parse_generation_config(const std::string& json_text, const std::filesystem::path& source);

// "repetition_penalty 1.05, eos [151645, 151643], top_k 20" (the set fields), or "none".
std::string describe(const GenerationConfig& config);

}  // namespace kvsafe::engine
