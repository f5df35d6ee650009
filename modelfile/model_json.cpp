#include "modelfile/model_json.h"

#include <fmt/format.h>

#include <fstream>
#include <iterator>

#include "modelfile/model_file_error.h"

namespace kvsafe::engine {
namespace {

// Thrown from the parser callback to stop at the depth limit.
struct TooDeep {
  int depth = 0;
};

}  // namespace

nlohmann::json parse_model_json(std::string_view text, const std::filesystem::path& file, std::uint64_t base_offset,
                                const std::string& item) {
  // NOTE: nlohmann's parser is iterative, but deeply nested values are still costly to build
  // and destroy; the callback sees every value's depth and stops the parse early.
  auto limit = [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxJsonDepth) throw TooDeep{depth};
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limit);
  } catch (const nlohmann::json::parse_error& e) {
    const std::uint64_t at = base_offset + (e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    // e.what() = "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    if (const auto colon = what.find("]"); colon != std::string::npos) what = what.substr(colon + 2);
    throw ModelFileError(file, item, "invalid JSON: " + what, at);
  } catch (const nlohmann::json::exception& e) {
    // NOTE: e.g. out_of_range 406 for a number literal that overflows a double ("1e400").
    std::string what = e.what();
    if (const auto colon = what.find("]"); colon != std::string::npos) what = what.substr(colon + 2);
    throw ModelFileError(file, item, "invalid JSON: " + what, base_offset);
  } catch (const TooDeep&) {
    throw ModelFileError(file, item, fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth), base_offset);
  }
}

std::string read_small_file(const std::filesystem::path& path, std::uint64_t max_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw ModelFileError(path, "open", "cannot read: " + ec.message());
  if (size > max_bytes) {
    throw ModelFileError(path, "open", fmt::format("file is {} bytes, more than the {} allowed", size, max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelFileError(path, "open", "cannot open");
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uint64_t>(in.gcount()) != size) {
    throw ModelFileError(path, "read", "short read");
  }
  return text;
}

}  // namespace kvsafe::engine
