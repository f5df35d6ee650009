#pragma once
// JSON parsing for model files (config.json, safetensors headers, shard indexes) with the
// limits a hostile file needs: nesting depth capped, syntax errors reported as
// ModelFileError with the absolute byte offset. Internal to engine/ readers.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kvsafe::engine {

inline constexpr int kMaxJsonDepth = 64;

// Parses `text`, which starts at byte `base_offset` of `file`; `item` names what is parsed
// ("safetensors header") in errors.
nlohmann::json parse_model_json(std::string_view text, const std::filesystem::path& file, std::uint64_t base_offset,
                                const std::string& item);

// Reads a whole small file (config.json, index) of at most `max_bytes`.
std::string read_small_file(const std::filesystem::path& path, std::uint64_t max_bytes);

}  // namespace kvsafe::engine
