#pragma once
// GgufFile: a GGUF model file (v2 or v3, little-endian), memory-mapped and fully validated
// on open. Spec: github.com/ggml-org/ggml/blob/master/docs/gguf.md.
//
// open() parses the header, every metadata key/value (all 13 value types, arrays nested to
// any depth up to kMaxArrayDepth) and every tensor info, and bounds-checks all of it against
// the file: string and array lengths are capped by the bytes left in the file, tensor shapes
// must not overflow, every tensor's data must lie inside the data section and be aligned to
// general.alignment (default 32). Anything wrong throws ModelFileError naming the file, the
// key or tensor, and the byte offset (modelfile/model_file_error.h); nothing is trusted later.
//
// Tensor data stays in the mapping; dequantize() converts one tensor to float in storage
// order (the tensor's own type, never general.file_type). Q/K rows of llama-style files
// are returned as stored (interleaved RoPE order); WeightsLoader (modelfile/weights_loader.h)
// is the layer that un-permutes them.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modelfile/gguf_dequantize.h"
#include "modelfile/mapped_file.h"

namespace kvsafe::engine {

// GGUF metadata value types (gguf.md, gguf_type).
enum class GgufValueType : std::uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint32", "array", ...; "type <id>" for unknown ids.
std::string to_string(GgufValueType type);

// One metadata value. Integers of every width are held in `integer` (uint64 values above
// INT64_MAX keep their bit pattern; `type` tells them apart), floats in `real`.
// Arrays hold their elements in exactly one of the vectors, chosen by `element_type`.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  std::int64_t integer = 0;                            // the integer types and bool (0/1)
  double real = 0.0;                                   // kFloat32 / kFloat64
  std::string string{};                                // kString
  GgufValueType element_type = GgufValueType::kUint8;  // kArray: type of the elements
  std::vector<std::int64_t> integers{};                // kArray of integers or bools
  std::vector<double> reals{};                         // kArray of floats
  std::vector<std::string> strings{};                  // kArray of strings
  std::vector<GgufValue> arrays{};                     // kArray of arrays (nested)
  std::uint64_t offset = 0;                            // absolute file offset of the value's type tag
  // Number of elements of an array value (0 for scalars).
  std::size_t array_size() const;
};

// One tensor as described by its tensor info.
struct GgufTensorInfo {
  std::string name{};
  // ggml order: dims[0] is the fastest-varying dimension (a row's length). 1..4 entries.
  std::vector<std::int64_t> dims{};
  GgmlType type = GgmlType::kF32;
  std::uint64_t offset = 0;       // relative to the data section (as stored)
  std::uint64_t n_elements = 0;   // product of dims
  std::uint64_t n_bytes = 0;      // n_elements / block_size * type_size
  std::uint64_t info_offset = 0;  // absolute file offset of this tensor info record
  // PyTorch / safetensors order (dims reversed): [rows, row_length] for a matrix.
  std::vector<std::int64_t> shape() const;
};

class GgufFile {
 public:
  static constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
  static constexpr std::uint64_t kDefaultAlignment = 32;
  static constexpr int kMaxDims = 4;
  static constexpr int kMaxArrayDepth = 16;

  // Maps and validates `path`. Throws ModelFileError (see top of file).
  static std::unique_ptr<GgufFile> open(const std::filesystem::path& path);
  // Same, for bytes already in memory (tests, fuzzing); `name` appears in errors.
  static std::unique_ptr<GgufFile> from_bytes(std::vector<std::byte> bytes, const std::filesystem::path& name);

  const std::filesystem::path& path() const { return file_.path(); }
  std::uint64_t file_size() const { return file_.size(); }
  // 2 or 3.
  std::uint32_t version() const { return version_; }
  // general.alignment, or 32 when absent.
  std::uint64_t alignment() const { return alignment_; }
  // Absolute file offset of the data section (aligned end of the tensor infos).
  std::uint64_t data_offset() const { return data_offset_; }

  // ---- metadata ----
  // Keys in file order.
  const std::vector<std::string>& keys() const { return key_order_; }
  std::size_t metadata_count() const { return key_order_.size(); }
  // True when `key` (or its legacy spelling, see below) is present.
  bool has(std::string_view key) const;
  // The raw value, or nullptr when absent.
  const GgufValue* find(std::string_view key) const;

  // Typed getters. nullopt / empty when the key is absent; a present key of the wrong type
  // throws ModelFileError naming the key and its offset. Legacy spellings are accepted as
  // fallbacks: "tokenizer.ggml.seperator_token_id" for "...separator_token_id", and
  // "<arch>.rope.scale_linear" for "<arch>.rope.scaling.factor" (with type linear implied).
  //
  // get_int accepts every integer type. NOTE: ggml writes 0xFFFFFFFF (uint32) or -1 for
  // "unset" token ids, so for keys ending in "_token_id" those values read as nullopt.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<std::int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;  // float32/float64 (ints too)
  std::optional<bool> get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<double> get_float_array(std::string_view key) const;      // float or integer arrays
  std::vector<std::int64_t> get_int_array(std::string_view key) const;  // integer or bool arrays

  // general.architecture ("llama", "qwen2", ...); throws ModelFileError when absent.
  std::string architecture() const;

  // ---- tensors ----
  // Tensor infos in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  // nullptr when absent.
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // Throws ModelFileError when absent.
  const GgufTensorInfo& tensor(std::string_view name) const;
  // The tensor's stored bytes inside the mapping (valid while this GgufFile lives).
  std::span<const std::byte> tensor_data(const GgufTensorInfo& info) const;
  // The tensor converted to float, storage order (dims[0] fastest). Throws
  // ModelFileError naming the tensor when its type cannot be dequantized, or when `out`
  // does not have exactly n_elements entries.
  std::vector<float> dequantize(const GgufTensorInfo& info) const;
  void dequantize(const GgufTensorInfo& info, std::span<float> out) const;

 private:
  explicit GgufFile(MappedFile file);
  void parse();
  const GgufValue* find_raw(std::string_view key) const;
  const GgufValue* find_with_alias(std::string_view key, std::string* found_key) const;
  [[noreturn]] void fail_key(std::string_view key, const GgufValue& value, std::string_view expected) const;

  MappedFile file_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = kDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::vector<std::string> key_order_;
  std::map<std::string, GgufValue, std::less<>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

}  // namespace kvsafe::engine
