#pragma once
// The --model argument of the commands that load a model: the path as given, else a file
// of that name in the model cache ($KVSAFE_MODEL_CACHE, where scripts/fetch-model puts
// SmolLM2), so `--model SmolLM2-135M-Instruct.Q4_1.gguf` works from anywhere.

#include <filesystem>
#include <string>

#include "cli/commands.h"

namespace kvsafe::cli {

// Throws InputError naming both places when neither exists.
std::filesystem::path resolve_model_argument(const std::string& model, const CommandContext& context);

}  // namespace kvsafe::cli
