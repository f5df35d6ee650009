#pragma once
// Hugging Face config.json -> ModelConfig, for the model_types of the paper:
// llama (Llama-2/3/3.1 incl. rope_scaling "llama3", SmolLM2, DeepSeek-LLM-7B, Yi), mistral
// (sliding_window), mixtral (MoE), qwen2 (q/k/v bias), phi3 (Phi-3/3.5: longrope/su),
// gemma2 (soft-capping, query_pre_attn_scalar, alternating sliding window, tied embeddings,
// (1 + w) norms) and olmo2 (QK-norm, post-norms). Defaults for absent keys are those of the
// matching transformers *Config class.
//
// Errors: ModelFileError naming the file and the key (JSON syntax errors also the byte
// offset); an unknown model_type lists the supported ones.

#include <filesystem>
#include <string_view>
#include <vector>

#include "modelfile/model_config.h"

namespace kvsafe::engine {

// Parses config.json text; `source` names the file in errors.
ModelConfig parse_hf_config(std::string_view json_text, const std::filesystem::path& source);
// Reads and parses a config.json file (at most 16 MiB).
ModelConfig read_hf_config(const std::filesystem::path& config_json);
// The model_type values parse_hf_config accepts.
std::vector<std::string> supported_hf_model_types();

}  // namespace kvsafe::engine
