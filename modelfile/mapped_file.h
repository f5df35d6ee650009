#pragma once
// MappedFile: a whole file, read-only, memory-mapped (or, for tests and fuzzing, a byte
// buffer held in memory). Readers keep one alive for as long as they hand out spans into
// it. Move-only.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace kvsafe::engine {

class MappedFile {
 public:
  // Maps `path` read-only. Throws ModelFileError naming the path when it cannot be
  // opened, stat'ed or mapped. An empty file maps to an empty span.
  static MappedFile open(const std::filesystem::path& path);
  // Wraps bytes already in memory; `name` stands in for the path in error messages.
  static MappedFile from_bytes(std::vector<std::byte> bytes, const std::filesystem::path& name);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::filesystem::path& path() const { return path_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  std::uint64_t size() const { return size_; }

 private:
  void release() noexcept;

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  void* mapping_ = nullptr;       // mmap base, or nullptr when owned_ holds the bytes
  std::vector<std::byte> owned_;  // from_bytes() storage
};

}  // namespace kvsafe::engine
