#pragma once
// ModelFileError: a model file (GGUF, safetensors, config.json, an index) is truncated,
// corrupt, hostile or unsupported. Every reader in engine/ throws only this type for bad
// input, and its message always has the same shape so users (and tests) can find the spot:
//
//   <file>: <item>: <detail> (at byte <offset>)
//
// <item> names the header field, metadata key ("key 'llama.block_count'") or tensor
// ("tensor 'blk.0.attn_q.weight'"); the "(at byte N)" suffix is left out when no byte
// offset applies (e.g. a config.json field).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/error.h"

namespace kvsafe::engine {

class ModelFileError : public kvsafe::InputError {
 public:
  // file: the file being read; item: what was being read; detail: what is wrong;
  // offset: the absolute byte offset in `file` where the problem starts, if any.
  ModelFileError(const std::filesystem::path& file, const std::string& item, const std::string& detail,
                 std::optional<std::uint64_t> offset = std::nullopt);

  const std::filesystem::path& file() const { return file_; }
  const std::string& item() const { return item_; }
  const std::string& detail() const { return detail_; }
  std::optional<std::uint64_t> offset() const { return offset_; }

 private:
  std::filesystem::path file_;
  std::string item_;
  std::string detail_;
  std::optional<std::uint64_t> offset_;
};

}  // namespace kvsafe::engine
