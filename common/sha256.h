#pragma once
// SHA-256 (FIPS 180-4). Used for cell ids, prompt-text hashes and model-file checksums,
// so it must never change its output: tests pin it to the NIST vectors.

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace kvsafe {

class Sha256 {
 public:
  Sha256();
  // Feeds more bytes; may be called any number of times before finish().
  void update(const void* data, std::size_t size);
  void update(std::string_view text) { update(text.data(), text.size()); }
  // Returns the digest; the object must not be updated afterwards.
  std::array<std::uint8_t, 32> finish();
  // Lower-case hex of finish().
  std::string finish_hex();

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

// Lower-case hex SHA-256 of a byte string.
std::string sha256_hex(std::string_view bytes);

// Lower-case hex SHA-256 of a file's contents, streamed. Throws InputError naming the
// path when it cannot be opened or read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace kvsafe
