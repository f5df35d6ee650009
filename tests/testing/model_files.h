#pragma once
// Where tests find the real models: stories260K in ../shared (CI has it at the same
// relative path) and SmolLM2-135M-Instruct in the model cache that scripts/fetch-model
// fills. The cache location comes from common/environment.h, the one place that reads
// the environment.

#include <filesystem>

#include "common/environment.h"

namespace kvsafe::testing {

inline std::filesystem::path stories260k_gguf_path() {
  return std::filesystem::path(KVSAFE_SOURCE_DIR) / ".." / "shared" / "models" / "stories260K" / "stories260K.gguf";
}

inline std::filesystem::path smollm2_gguf_path() {
  return Environment::from_process().model_cache_dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

}  // namespace kvsafe::testing
