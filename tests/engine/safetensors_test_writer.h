#pragma once
// A minimal safetensors writer for tests (format: huggingface/safetensors README): u64 header
// length, JSON header padded with spaces to a multiple of 8, then the data. Written here, not
// taken from the reader, so the reader is checked against the format, not against itself.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace kvsafe::engine::test {

struct StTensor {
  std::string name;
  std::string dtype = "F32";  // F32 / F16 / BF16
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> data;  // raw little-endian bytes
};

inline StTensor st_f32(std::string name, std::vector<std::int64_t> shape, const std::vector<float>& v) {
  StTensor t{.name = std::move(name), .dtype = "F32", .shape = std::move(shape), .data = {}};
  t.data.resize(v.size() * 4);
  if (!v.empty()) std::memcpy(t.data.data(), v.data(), t.data.size());
  return t;
}

inline std::vector<std::uint8_t> safetensors_bytes(const std::vector<StTensor>& tensors,
                                                   const nlohmann::json& metadata = nullptr) {
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  const std::uint64_t n = text.size();
  std::vector<std::uint8_t> out(8 + n + offset);
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, text.data(), n);
  std::size_t at = 8 + n;
  for (const auto& t : tensors) {
    if (!t.data.empty()) std::memcpy(out.data() + at, t.data.data(), t.data.size());
    at += t.data.size();
  }
  return out;
}

inline void write_file(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace kvsafe::engine::test
