#pragma once
// safetensors (huggingface/safetensors, docs "Format"): an u64 little-endian header length N,
// N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {string: string}}, then the data section. Files are memory-mapped.
//
// SafetensorsFile validates the whole header on open: header length within the file (and
// at most 100 MB, the reference implementation's limit), JSON syntax and nesting, every
// entry's dtype, shape (no negative dims, no overflow), and data_offsets (inside the data
// section, end - begin == elements * dtype size, no two tensors overlapping). Violations
// throw ModelFileError naming the file, the tensor and the byte offset.
//
// SafetensorsModel opens a checkpoint: one model.safetensors, or the shards listed by
// model.safetensors.index.json ("weight_map": tensor -> shard file).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modelfile/mapped_file.h"

namespace kvsafe::engine {

// Tensor element types. Only F32, F16 and BF16 convert to float; the others are listed so
// their sizes are checked and an error can name them.
enum class SafetensorsDtype { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool, kF8E4M3, kF8E5M2 };

struct SafetensorsTensorInfo {
  std::string name{};
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::string dtype_name{};           // as written: "BF16"
  std::vector<std::int64_t> shape{};  // row-major, as written
  std::uint64_t n_elements = 0;
  std::uint64_t begin = 0;  // data_offsets, relative to the data section
  std::uint64_t end = 0;
};

class SafetensorsFile {
 public:
  static constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

  // Maps and validates `path`. Throws ModelFileError.
  static std::unique_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  // Same for bytes in memory (tests, fuzzing); `name` appears in errors.
  static std::unique_ptr<SafetensorsFile> from_bytes(std::vector<std::byte> bytes, const std::filesystem::path& name);

  const std::filesystem::path& path() const { return file_.path(); }
  // Absolute offset of the data section (8 + header length).
  std::uint64_t data_offset() const { return data_offset_; }
  // The "__metadata__" object (string -> string), empty when absent.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Tensors sorted by name.
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  // nullptr when absent.
  const SafetensorsTensorInfo* find_tensor(std::string_view name) const;
  // The stored bytes (valid while this object lives).
  std::span<const std::byte> tensor_data(const SafetensorsTensorInfo& info) const;
  // F32/F16/BF16 -> float, row-major; other dtypes throw ModelFileError naming the tensor.
  std::vector<float> to_float(const SafetensorsTensorInfo& info) const;
  // Same into `out`, which must have n_elements entries.
  void to_float(const SafetensorsTensorInfo& info, std::span<float> out) const;

 private:
  explicit SafetensorsFile(MappedFile file);
  void parse();

  MappedFile file_;
  std::uint64_t data_offset_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

// Bytes per element of a dtype.
std::size_t safetensors_dtype_size(SafetensorsDtype dtype);

class SafetensorsModel {
 public:
  // `path`: a .safetensors file, a model.safetensors.index.json, or a folder holding either
  // (the index wins). Every shard named by the index is opened; a tensor the index maps to a
  // shard that lacks it, or a tensor present in two shards, is a ModelFileError.
  static std::unique_ptr<SafetensorsModel> open(const std::filesystem::path& path);

  // All tensor names, sorted.
  std::vector<std::string> tensor_names() const;
  // nullptr when absent; `file` (optional) receives the shard that holds it.
  const SafetensorsTensorInfo* find_tensor(std::string_view name, const SafetensorsFile** file = nullptr) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, std::pair<const SafetensorsFile*, const SafetensorsTensorInfo*>, std::less<>> index_;
};

}  // namespace kvsafe::engine
