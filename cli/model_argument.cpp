// resolve_model_argument: see model_argument.h.

#include "cli/model_argument.h"

#include "common/error.h"

namespace kvsafe::cli {

std::filesystem::path resolve_model_argument(const std::string& model, const CommandContext& context) {
  const std::filesystem::path given(model);
  if (std::filesystem::exists(given)) return given;
  const std::filesystem::path cached = context.environment.model_cache_dir / given;
  KVSAFE_CHECK(given.is_relative() && std::filesystem::exists(cached), model, ": no such file (nor in the model cache ",
               context.environment.model_cache_dir.string(), ")");
  return cached;
}

}  // namespace kvsafe::cli
