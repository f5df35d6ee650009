// GGUF parsing. Every read goes through Cursor, which checks the bytes left before it
// touches them; counts are checked against the bytes left before anything is allocated.

#include "modelfile/gguf_reader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "modelfile/model_file_error.h"

namespace kvsafe::engine {
namespace {

constexpr std::uint64_t kMaxKeyLength = 65535;  // gguf.md: keys are at most 65535 bytes
constexpr std::uint64_t kMaxAlignment = 1ULL << 20;

// Smallest encoding of one value of `type` (used to bound element counts by bytes left).
std::uint64_t min_encoded_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString:
      return 8;  // a string is at least its u64 length
    case GgufValueType::kArray:
      return 12;  // u32 element type + u64 count
  }
  return 1;
}

bool is_known_value_type(std::uint32_t id) {
  return id <= 12;
}

bool is_integer_type(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool is_float_type(GgufValueType t) {
  return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64;
}

class Cursor {
 public:
  explicit Cursor(const MappedFile& file) : file_(file) {}

  std::uint64_t pos() const { return pos_; }
  std::uint64_t left() const { return file_.size() - pos_; }
  const std::filesystem::path& path() const { return file_.path(); }

  [[noreturn]] void fail(const std::string& item, const std::string& detail, std::uint64_t at) const {
    throw ModelFileError(file_.path(), item, detail, at);
  }

  void need(std::uint64_t n, const std::string& item) const {
    if (n > left()) {
      fail(item, fmt::format("truncated: needs {} bytes, only {} left in the file", n, left()), pos_);
    }
  }

  template <typename T>
  T read(const std::string& item) {
    need(sizeof(T), item);
    T value{};
    std::memcpy(&value, file_.data() + pos_, sizeof(T));  // GGUF is little-endian, as is x86/arm64
    pos_ += sizeof(T);
    return value;
  }

  std::string read_string(const std::string& item, std::uint64_t max_length) {
    const std::uint64_t at = pos_;
    const auto length = read<std::uint64_t>(item + " length");
    if (length > left()) {
      fail(item, fmt::format("string length {} exceeds the {} bytes left in the file", length, left()), at);
    }
    if (length > max_length) {
      fail(item, fmt::format("string length {} exceeds the limit {}", length, max_length), at);
    }
    std::string text(reinterpret_cast<const char*>(file_.data() + pos_), length);
    pos_ += length;
    return text;
  }

 private:
  const MappedFile& file_;
  std::uint64_t pos_ = 0;
};

std::string key_item(std::string_view key) {
  return fmt::format("key '{}'", key);
}
std::string tensor_item(std::string_view name) {
  return fmt::format("tensor '{}'", name);
}

GgufValue read_value(Cursor& in, GgufValueType type, std::uint64_t at, const std::string& item, int depth);

// Reads `count` elements of `element_type` into `out` (an array value).
void read_array_elements(Cursor& in, GgufValue& out, std::uint64_t count, const std::string& item, int depth) {
  const GgufValueType et = out.element_type;
  auto read_int = [&]() -> std::int64_t {
    switch (et) {
      case GgufValueType::kUint8:
        return in.read<std::uint8_t>(item);
      case GgufValueType::kInt8:
        return in.read<std::int8_t>(item);
      case GgufValueType::kUint16:
        return in.read<std::uint16_t>(item);
      case GgufValueType::kInt16:
        return in.read<std::int16_t>(item);
      case GgufValueType::kUint32:
        return in.read<std::uint32_t>(item);
      case GgufValueType::kInt32:
        return in.read<std::int32_t>(item);
      case GgufValueType::kUint64:
        return static_cast<std::int64_t>(in.read<std::uint64_t>(item));
      case GgufValueType::kInt64:
        return in.read<std::int64_t>(item);
      case GgufValueType::kBool: {
        const std::uint64_t at = in.pos();
        const auto b = in.read<std::uint8_t>(item);
        if (b > 1) in.fail(item, fmt::format("bool array element is {}, not 0 or 1", b), at);
        return b;
      }
      default:
        return 0;
    }
  };
  if (is_integer_type(et) || et == GgufValueType::kBool) {
    out.integers.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) out.integers.push_back(read_int());
  } else if (et == GgufValueType::kFloat32) {
    out.reals.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) out.reals.push_back(in.read<float>(item));
  } else if (et == GgufValueType::kFloat64) {
    out.reals.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) out.reals.push_back(in.read<double>(item));
  } else if (et == GgufValueType::kString) {
    out.strings.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
      out.strings.push_back(in.read_string(item, std::numeric_limits<std::uint64_t>::max()));
    }
  } else {  // nested arrays
    out.arrays.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
      out.arrays.push_back(read_value(in, GgufValueType::kArray, in.pos(), item, depth + 1));
    }
  }
}

GgufValue read_value(Cursor& in, GgufValueType type, std::uint64_t at, const std::string& item, int depth) {
  GgufValue value;
  value.type = type;
  value.offset = at;
  switch (type) {
    case GgufValueType::kUint8:
      value.integer = in.read<std::uint8_t>(item);
      break;
    case GgufValueType::kInt8:
      value.integer = in.read<std::int8_t>(item);
      break;
    case GgufValueType::kUint16:
      value.integer = in.read<std::uint16_t>(item);
      break;
    case GgufValueType::kInt16:
      value.integer = in.read<std::int16_t>(item);
      break;
    case GgufValueType::kUint32:
      value.integer = in.read<std::uint32_t>(item);
      break;
    case GgufValueType::kInt32:
      value.integer = in.read<std::int32_t>(item);
      break;
    case GgufValueType::kUint64:
      value.integer = static_cast<std::int64_t>(in.read<std::uint64_t>(item));
      break;
    case GgufValueType::kInt64:
      value.integer = in.read<std::int64_t>(item);
      break;
    case GgufValueType::kFloat32:
      value.real = in.read<float>(item);
      break;
    case GgufValueType::kFloat64:
      value.real = in.read<double>(item);
      break;
    case GgufValueType::kBool: {
      const std::uint64_t bool_at = in.pos();
      const auto b = in.read<std::uint8_t>(item);
      if (b > 1) in.fail(item, fmt::format("bool value is {}, not 0 or 1", b), bool_at);
      value.integer = b;
      break;
    }
    case GgufValueType::kString:
      value.string = in.read_string(item, std::numeric_limits<std::uint64_t>::max());
      break;
    case GgufValueType::kArray: {
      if (depth >= GgufFile::kMaxArrayDepth) {
        in.fail(item, fmt::format("arrays nested deeper than {}", GgufFile::kMaxArrayDepth), in.pos());
      }
      const std::uint64_t type_at = in.pos();
      const auto element_id = in.read<std::uint32_t>(item + " array type");
      if (!is_known_value_type(element_id)) {
        in.fail(item, fmt::format("unknown array element type {}", element_id), type_at);
      }
      value.element_type = static_cast<GgufValueType>(element_id);
      const std::uint64_t count_at = in.pos();
      const auto count = in.read<std::uint64_t>(item + " array length");
      const std::uint64_t min_size = min_encoded_size(value.element_type);
      // NOTE: bounding the count by the bytes left keeps a hostile count from reserving
      // gigabytes; division avoids overflowing count * min_size.
      if (count > in.left() / min_size) {
        in.fail(item,
                fmt::format("array of {} {} elements needs at least {} bytes per element, only "
                            "{} bytes left in the file",
                            count, to_string(value.element_type), min_size, in.left()),
                count_at);
      }
      read_array_elements(in, value, count, item, depth);
      break;
    }
  }
  return value;
}

bool is_unset_token_id(std::string_view key, const GgufValue& v) {
  if (!key.ends_with("_token_id")) return false;
  if (v.type == GgufValueType::kUint32) return v.integer == 0xFFFFFFFFLL;
  return v.integer == -1;  // int32/int64 -1, or uint64 0xFFFF...F (bit pattern -1)
}

}  // namespace

std::string to_string(GgufValueType type) {
  static constexpr std::string_view kNames[] = {"uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
                                                "bool",  "string", "array",  "uint64", "int64",  "float64"};
  const auto id = static_cast<std::uint32_t>(type);
  if (id < std::size(kNames)) return std::string(kNames[id]);
  return fmt::format("type {}", id);
}

std::size_t GgufValue::array_size() const {
  if (type != GgufValueType::kArray) return 0;
  return integers.size() + reals.size() + strings.size() + arrays.size();
}

std::vector<std::int64_t> GgufTensorInfo::shape() const {
  return {dims.rbegin(), dims.rend()};
}

GgufFile::GgufFile(MappedFile file) : file_(std::move(file)) {}

std::unique_ptr<GgufFile> GgufFile::open(const std::filesystem::path& path) {
  std::unique_ptr<GgufFile> gguf(new GgufFile(MappedFile::open(path)));
  gguf->parse();
  return gguf;
}

std::unique_ptr<GgufFile> GgufFile::from_bytes(std::vector<std::byte> bytes, const std::filesystem::path& name) {
  std::unique_ptr<GgufFile> gguf(new GgufFile(MappedFile::from_bytes(std::move(bytes), name)));
  gguf->parse();
  return gguf;
}

void GgufFile::parse() {
  Cursor in(file_);
  if (file_.size() < 4) {
    in.fail("header 'magic'", fmt::format("file is {} bytes, too short for a GGUF header", file_.size()), 0);
  }
  const auto magic = in.read<std::uint32_t>("header 'magic'");
  if (magic != kMagic) {
    in.fail("header 'magic'",
            fmt::format("not a GGUF file (magic 0x{:08x}, expected 0x{:08x} "
                        "\"GGUF\")",
                        magic, kMagic),
            0);
  }
  version_ = in.read<std::uint32_t>("header 'version'");
  if (version_ == 0x02000000U || version_ == 0x03000000U) {
    in.fail("header 'version'", "big-endian GGUF files are not supported", 4);
  }
  if (version_ != 2 && version_ != 3) {
    in.fail("header 'version'", fmt::format("unsupported GGUF version {} (supported: 2, 3)", version_), 4);
  }
  const auto n_tensors = in.read<std::uint64_t>("header 'tensor_count'");
  const auto n_kv = in.read<std::uint64_t>("header 'metadata_kv_count'");
  // NOTE: a key/value takes >= 13 bytes (u64 key length, u32 type, 1-byte value) and a
  // tensor info >= 24 (u64 name length, u32 n_dims, u32 type, u64 offset).
  if (n_tensors > in.left() / 24) {
    in.fail("header 'tensor_count'",
            fmt::format("{} tensors cannot fit in the {} bytes left in the file", n_tensors, in.left()), 8);
  }
  if (n_kv > in.left() / 13) {
    in.fail("header 'metadata_kv_count'",
            fmt::format("{} key/value pairs cannot fit in the {} bytes left in the file", n_kv, in.left()), 16);
  }

  key_order_.reserve(n_kv);
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    const std::uint64_t key_at = in.pos();
    const std::string index_item = fmt::format("metadata key #{}", i);
    std::string key = in.read_string(index_item, kMaxKeyLength);
    if (key.empty()) in.fail(index_item, "empty key", key_at);
    const std::string item = key_item(key);
    if (metadata_.contains(key)) in.fail(item, "duplicate key", key_at);
    const std::uint64_t type_at = in.pos();
    const auto type_id = in.read<std::uint32_t>(item + " type");
    if (!is_known_value_type(type_id)) {
      in.fail(item, fmt::format("unknown value type {}", type_id), type_at);
    }
    GgufValue value = read_value(in, static_cast<GgufValueType>(type_id), type_at, item, 0);
    key_order_.push_back(key);
    metadata_.emplace(std::move(key), std::move(value));
  }

  if (const GgufValue* align = find_raw("general.alignment")) {
    if (!is_integer_type(align->type)) {
      fail_key("general.alignment", *align, "an integer");
    }
    const auto a = static_cast<std::uint64_t>(align->integer);
    if (a == 0 || (a & (a - 1)) != 0 || a > kMaxAlignment) {
      in.fail(key_item("general.alignment"),
              fmt::format("alignment {} is not a power of two in 1..{}", align->integer, kMaxAlignment), align->offset);
    }
    alignment_ = a;
  }

  tensors_.reserve(n_tensors);
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo info;
    info.info_offset = in.pos();
    info.name = in.read_string(fmt::format("tensor info #{} name", i), kMaxKeyLength);
    const std::string item = tensor_item(info.name);
    if (tensor_index_.contains(info.name)) in.fail(item, "duplicate tensor name", info.info_offset);
    const std::uint64_t dims_at = in.pos();
    const auto n_dims = in.read<std::uint32_t>(item + " n_dims");
    if (n_dims > static_cast<std::uint32_t>(kMaxDims)) {
      in.fail(item, fmt::format("n_dims is {}, at most {} allowed", n_dims, kMaxDims), dims_at);
    }
    std::uint64_t n_elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const std::uint64_t dim_at = in.pos();
      const auto dim = in.read<std::uint64_t>(item + " dims");
      if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        in.fail(item, fmt::format("dimension {} is {}, out of range", d, dim), dim_at);
      }
      if (dim != 0 && n_elements > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / dim) {
        in.fail(item, fmt::format("shape overflows: element count exceeds 2^63 at dimension {}", d), dim_at);
      }
      n_elements *= dim;
      info.dims.push_back(static_cast<std::int64_t>(dim));
    }
    const std::uint64_t type_at = in.pos();
    const auto type_id = in.read<std::uint32_t>(item + " type");
    const auto traits = ggml_type_traits(type_id);
    if (!traits) in.fail(item, fmt::format("unknown ggml type id {}", type_id), type_at);
    info.type = static_cast<GgmlType>(type_id);
    if (!info.dims.empty() && info.dims[0] % traits->block_size != 0) {
      in.fail(item,
              fmt::format("row length {} is not a multiple of the {} block size {}", info.dims[0], traits->name,
                          traits->block_size),
              dims_at + 4);
    }
    if (n_elements % traits->block_size != 0) {
      in.fail(item,
              fmt::format("{} elements is not a multiple of the {} block size {}", n_elements, traits->name,
                          traits->block_size),
              dims_at);
    }
    info.n_elements = n_elements;
    const std::uint64_t offset_at = in.pos();
    const std::uint64_t n_blocks = n_elements / traits->block_size;
    // NOTE: checked before multiplying so that a huge shape cannot overflow n_bytes.
    if (n_blocks > file_.size() / traits->type_size) {
      in.fail(item,
              fmt::format("shape {} of type {} needs more bytes than the whole file ({})", fmt::join(info.dims, "x"),
                          traits->name, file_.size()),
              dims_at);
    }
    info.n_bytes = n_blocks * traits->type_size;
    info.offset = in.read<std::uint64_t>(item + " offset");
    if (info.offset % alignment_ != 0) {
      in.fail(item, fmt::format("data offset {} is not a multiple of the alignment {}", info.offset, alignment_),
              offset_at);
    }
    tensor_index_.emplace(info.name, tensors_.size());
    tensors_.push_back(std::move(info));
  }

  const std::uint64_t end_of_infos = in.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  const std::uint64_t size = file_.size();
  for (const GgufTensorInfo& info : tensors_) {
    if (info.n_bytes == 0) continue;
    // offset field = info_offset + 8 + name + 4 + 8 * n_dims + 4
    const std::uint64_t offset_at = info.info_offset + 8 + info.name.size() + 4 + 8 * info.dims.size() + 4;
    if (data_offset_ > size || info.offset > size - data_offset_ || info.n_bytes > size - data_offset_ - info.offset) {
      in.fail(tensor_item(info.name),
              fmt::format("data [{}, +{}) lies past the end of the file ({} bytes; data section "
                          "starts at {})",
                          info.offset, info.n_bytes, size, data_offset_),
              offset_at);
    }
  }
  // NOTE: two tensors sharing bytes would alias each other's data; ggml writes them
  // back to back, so overlap only comes from a corrupt or hostile file.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& info : tensors_) {
    if (info.n_bytes > 0) by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& prev = *by_offset[i - 1];
    if (by_offset[i]->offset < prev.offset + prev.n_bytes) {
      in.fail(tensor_item(prev.name),
              fmt::format("data [{}, +{}) overlaps tensor '{}' at {}", prev.offset, prev.n_bytes, by_offset[i]->name,
                          by_offset[i]->offset),
              data_offset_ + prev.offset);
    }
  }
}

const GgufValue* GgufFile::find_raw(std::string_view key) const {
  const auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufValue* GgufFile::find_with_alias(std::string_view key, std::string* found_key) const {
  if (const GgufValue* v = find_raw(key)) {
    *found_key = std::string(key);
    return v;
  }
  // Legacy spellings written by older converters (llama.cpp gguf-py constants.py).
  std::string alias;
  constexpr std::string_view kSep = "tokenizer.ggml.separator_token_id";
  constexpr std::string_view kScaling = ".rope.scaling.factor";
  if (key == kSep) {
    alias = "tokenizer.ggml.seperator_token_id";
  } else if (key.ends_with(kScaling)) {
    alias = std::string(key.substr(0, key.size() - kScaling.size())) + ".rope.scale_linear";
  }
  if (alias.empty()) return nullptr;
  if (const GgufValue* v = find_raw(alias)) {
    *found_key = alias;
    return v;
  }
  return nullptr;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  std::string found;
  return find_with_alias(key, &found);
}

bool GgufFile::has(std::string_view key) const {
  return find(key) != nullptr;
}

void GgufFile::fail_key(std::string_view key, const GgufValue& value, std::string_view expected) const {
  std::string got = to_string(value.type);
  if (value.type == GgufValueType::kArray) {
    got = fmt::format("array of {}", to_string(value.element_type));
  }
  throw ModelFileError(file_.path(), key_item(key), fmt::format("expected {}, found {}", expected, got), value.offset);
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  std::string found;
  const GgufValue* v = find_with_alias(key, &found);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::kString) fail_key(found, *v, "a string");
  return v->string;
}

std::optional<std::int64_t> GgufFile::get_int(std::string_view key) const {
  std::string found;
  const GgufValue* v = find_with_alias(key, &found);
  if (v == nullptr) return std::nullopt;
  if (!is_integer_type(v->type)) fail_key(found, *v, "an integer");
  if (is_unset_token_id(found, *v)) return std::nullopt;
  if (v->type == GgufValueType::kUint64 && v->integer < 0) {
    throw ModelFileError(file_.path(), key_item(found),
                         fmt::format("uint64 value {} exceeds the int64 range", static_cast<std::uint64_t>(v->integer)),
                         v->offset);
  }
  return v->integer;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  std::string found;
  const GgufValue* v = find_with_alias(key, &found);
  if (v == nullptr) return std::nullopt;
  if (is_float_type(v->type)) return v->real;
  if (is_integer_type(v->type)) {
    if (v->type == GgufValueType::kUint64) return static_cast<double>(static_cast<std::uint64_t>(v->integer));
    return static_cast<double>(v->integer);
  }
  fail_key(found, *v, "a number");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  std::string found;
  const GgufValue* v = find_with_alias(key, &found);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::kBool) fail_key(found, *v, "a bool");
  return v->integer != 0;
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  std::string found;
  const GgufValue* v = find_with_alias(key, &found);
  if (v == nullptr) return {};
  if (v->type != GgufValueType::kArray || v->element_type != GgufValueType::kString) {
    fail_key(found, *v, "an array of strings");
  }
  return v->strings;
}

std::vector<double> GgufFile::get_float_array(std::string_view key) const {
  std::string found;
  const GgufValue* v = find_with_alias(key, &found);
  if (v == nullptr) return {};
  if (v->type != GgufValueType::kArray) fail_key(found, *v, "an array of numbers");
  if (is_float_type(v->element_type)) return v->reals;
  if (is_integer_type(v->element_type)) {
    std::vector<double> out;
    out.reserve(v->integers.size());
    for (const std::int64_t i : v->integers) {
      out.push_back(v->element_type == GgufValueType::kUint64 ? static_cast<double>(static_cast<std::uint64_t>(i))
                                                              : static_cast<double>(i));
    }
    return out;
  }
  fail_key(found, *v, "an array of numbers");
}

std::vector<std::int64_t> GgufFile::get_int_array(std::string_view key) const {
  std::string found;
  const GgufValue* v = find_with_alias(key, &found);
  if (v == nullptr) return {};
  if (v->type != GgufValueType::kArray ||
      !(is_integer_type(v->element_type) || v->element_type == GgufValueType::kBool)) {
    fail_key(found, *v, "an array of integers");
  }
  if (v->element_type == GgufValueType::kUint64) {
    for (const std::int64_t i : v->integers) {
      if (i < 0) {
        throw ModelFileError(file_.path(), key_item(found),
                             fmt::format("uint64 element {} exceeds the int64 range", static_cast<std::uint64_t>(i)),
                             v->offset);
      }
    }
  }
  return v->integers;
}

std::string GgufFile::architecture() const {
  auto arch = get_string("general.architecture");
  if (!arch) {
    throw ModelFileError(file_.path(), key_item("general.architecture"), "missing");
  }
  return *arch;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* info = find_tensor(name);
  if (info == nullptr) throw ModelFileError(file_.path(), tensor_item(name), "no such tensor");
  return *info;
}

std::span<const std::byte> GgufFile::tensor_data(const GgufTensorInfo& info) const {
  // Validated in parse(): [data_offset + offset, + n_bytes) lies inside the file.
  if (info.n_bytes == 0) return {};
  return file_.bytes().subspan(data_offset_ + info.offset, info.n_bytes);
}

std::vector<float> GgufFile::dequantize(const GgufTensorInfo& info) const {
  const auto traits = ggml_type_traits(static_cast<std::uint32_t>(info.type));
  if (!traits || !traits->dequantizable) {
    throw ModelFileError(file_.path(), tensor_item(info.name),
                         fmt::format("cannot dequantize type {} (supported: f32 f16 bf16 q4_0 "
                                     "q4_1 q5_0 q5_1 q8_0 q4_K q5_K q6_K)",
                                     to_string(info.type)),
                         data_offset_ + info.offset);
  }
  std::vector<float> out(info.n_elements);
  dequantize(info, out);
  return out;
}

void GgufFile::dequantize(const GgufTensorInfo& info, std::span<float> out) const {
  const auto traits = ggml_type_traits(static_cast<std::uint32_t>(info.type));
  if (!traits || !traits->dequantizable) {
    throw ModelFileError(file_.path(), tensor_item(info.name),
                         fmt::format("cannot dequantize type {}", to_string(info.type)), data_offset_ + info.offset);
  }
  if (out.size() != info.n_elements) {
    throw ModelFileError(file_.path(), tensor_item(info.name),
                         fmt::format("output has {} elements, the tensor {}", out.size(), info.n_elements));
  }
  dequantize_to_float(info.type, tensor_data(info), out);
}

}  // namespace kvsafe::engine
