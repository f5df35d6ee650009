#include "modelfile/model_file_error.h"

#include <fmt/format.h>

namespace kvsafe::engine {
namespace {

std::string format_message(const std::filesystem::path& file, const std::string& item, const std::string& detail,
                           std::optional<std::uint64_t> offset) {
  std::string text = fmt::format("{}: {}: {}", file.string(), item, detail);
  if (offset) text += fmt::format(" (at byte {})", *offset);
  return text;
}

}  // namespace

ModelFileError::ModelFileError(const std::filesystem::path& file, const std::string& item, const std::string& detail,
                               std::optional<std::uint64_t> offset)
    : InputError(format_message(file, item, detail, offset)),
      file_(file),
      item_(item),
      detail_(detail),
      offset_(offset) {}

}  // namespace kvsafe::engine
