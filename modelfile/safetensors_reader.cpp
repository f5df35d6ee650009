#include "modelfile/safetensors_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include "modelfile/gguf_dequantize.h"
#include "modelfile/model_file_error.h"
#include "modelfile/model_json.h"

namespace kvsafe::engine {
namespace {

using nlohmann::json;

constexpr std::uint64_t kMaxIndexBytes = 64ULL << 20;

struct DtypeEntry {
  std::string_view name;
  SafetensorsDtype dtype;
  std::size_t size;
};

constexpr DtypeEntry kDtypes[] = {
    {"F32", SafetensorsDtype::kF32, 4},        {"F16", SafetensorsDtype::kF16, 2},
    {"BF16", SafetensorsDtype::kBF16, 2},      {"F64", SafetensorsDtype::kF64, 8},
    {"I64", SafetensorsDtype::kI64, 8},        {"I32", SafetensorsDtype::kI32, 4},
    {"I16", SafetensorsDtype::kI16, 2},        {"I8", SafetensorsDtype::kI8, 1},
    {"U8", SafetensorsDtype::kU8, 1},          {"BOOL", SafetensorsDtype::kBool, 1},
    {"F8_E4M3", SafetensorsDtype::kF8E4M3, 1}, {"F8_E5M2", SafetensorsDtype::kF8E5M2, 1},
};

std::string tensor_item(std::string_view name) {
  return fmt::format("tensor '{}'", name);
}

}  // namespace

std::size_t safetensors_dtype_size(SafetensorsDtype dtype) {
  for (const auto& e : kDtypes) {
    if (e.dtype == dtype) return e.size;
  }
  return 1;
}

SafetensorsFile::SafetensorsFile(MappedFile file) : file_(std::move(file)) {}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile(MappedFile::open(path)));
  f->parse();
  return f;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::from_bytes(std::vector<std::byte> bytes,
                                                             const std::filesystem::path& name) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile(MappedFile::from_bytes(std::move(bytes), name)));
  f->parse();
  return f;
}

void SafetensorsFile::parse() {
  const auto& path = file_.path();
  const std::uint64_t size = file_.size();
  if (size < 8) {
    throw ModelFileError(path, "header length",
                         fmt::format("file is {} bytes, too short for a safetensors header", size), 0);
  }
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, file_.data(), 8);
  if (header_len > size - 8 || header_len > kMaxHeaderBytes) {
    throw ModelFileError(path, "header length",
                         fmt::format("header of {} bytes does not fit the file ({} bytes) or "
                                     "exceeds {} bytes",
                                     header_len, size, kMaxHeaderBytes),
                         0);
  }
  data_offset_ = 8 + header_len;
  const std::string_view text(reinterpret_cast<const char*>(file_.data() + 8), header_len);
  if (text.empty() || text.front() != '{') {
    throw ModelFileError(path, "header", "the JSON header must start with '{'", 8);
  }
  const json header = parse_model_json(text, path, 8, "header");
  if (!header.is_object()) throw ModelFileError(path, "header", "expected a JSON object", 8);

  const std::uint64_t data_size = size - data_offset_;
  for (const auto& [name, entry] : header.items()) {
    const std::string item = tensor_item(name);
    if (name == "__metadata__") {
      if (!entry.is_object()) throw ModelFileError(path, "__metadata__", "expected an object", 8);
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) {
          throw ModelFileError(path, fmt::format("__metadata__ '{}'", k), "values must be strings", 8);
        }
        metadata_.emplace(k, v.get<std::string>());
      }
      continue;
    }
    if (!entry.is_object()) throw ModelFileError(path, item, "expected an object", 8);
    SafetensorsTensorInfo info;
    info.name = name;
    const auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      throw ModelFileError(path, item, "missing string 'dtype'", 8);
    }
    info.dtype_name = dtype_it->get<std::string>();
    const auto known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                    [&](const DtypeEntry& e) { return e.name == info.dtype_name; });
    if (known == std::end(kDtypes)) {
      throw ModelFileError(path, item, fmt::format("unknown dtype '{}'", info.dtype_name), 8);
    }
    info.dtype = known->dtype;
    const auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array() || shape_it->size() > 8) {
      throw ModelFileError(path, item, "'shape' must be a list of at most 8 integers", 8);
    }
    std::uint64_t n = 1;
    for (const json& d : *shape_it) {
      if (!d.is_number_unsigned()) {
        throw ModelFileError(path, item, fmt::format("bad dimension {} in 'shape'", d.dump()), 8);
      }
      const auto dim = d.get<std::uint64_t>();
      if (dim != 0 && n > data_size / dim) {  // more elements than the data section has bytes
        throw ModelFileError(path, item,
                             fmt::format("shape {} needs more than the {} data bytes", shape_it->dump(), data_size), 8);
      }
      n *= dim;
      info.shape.push_back(static_cast<std::int64_t>(dim));
    }
    info.n_elements = n;
    const auto off_it = entry.find("data_offsets");
    if (off_it == entry.end() || !off_it->is_array() || off_it->size() != 2 || !(*off_it)[0].is_number_unsigned() ||
        !(*off_it)[1].is_number_unsigned()) {
      throw ModelFileError(path, item, "'data_offsets' must be [begin, end]", 8);
    }
    info.begin = (*off_it)[0].get<std::uint64_t>();
    info.end = (*off_it)[1].get<std::uint64_t>();
    if (info.begin > info.end || info.end > data_size) {
      throw ModelFileError(
          path, item,
          fmt::format("data_offsets [{}, {}] outside the data section of {} bytes", info.begin, info.end, data_size),
          data_offset_ + std::min(info.begin, data_size));
    }
    const std::uint64_t expected = n * known->size;  // n <= data_size, no overflow
    if (info.end - info.begin != expected) {
      throw ModelFileError(path, item,
                           fmt::format("data_offsets span {} bytes, shape {} of {} needs {}", info.end - info.begin,
                                       shape_it->dump(), info.dtype_name, expected),
                           data_offset_ + info.begin);
    }
    tensors_.push_back(std::move(info));
  }
  std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  // NOTE: overlapping tensors would alias; the reference implementation rejects them too.
  std::vector<const SafetensorsTensorInfo*> by_offset;
  for (const auto& t : tensors_) {
    if (t.end > t.begin) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      throw ModelFileError(path, tensor_item(by_offset[i]->name),
                           fmt::format("data overlaps tensor '{}'", by_offset[i - 1]->name),
                           data_offset_ + by_offset[i]->begin);
    }
  }
  for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsTensorInfo* SafetensorsFile::find_tensor(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::byte> SafetensorsFile::tensor_data(const SafetensorsTensorInfo& info) const {
  if (info.end == info.begin) return {};
  return file_.bytes().subspan(data_offset_ + info.begin, info.end - info.begin);
}

std::vector<float> SafetensorsFile::to_float(const SafetensorsTensorInfo& info) const {
  std::vector<float> out(info.n_elements);
  to_float(info, out);
  return out;
}

void SafetensorsFile::to_float(const SafetensorsTensorInfo& info, std::span<float> out) const {
  if (out.size() != info.n_elements) {
    throw ModelFileError(path(), tensor_item(info.name),
                         fmt::format("output has {} elements, the tensor {}", out.size(), info.n_elements));
  }
  GgmlType as{};
  switch (info.dtype) {
    case SafetensorsDtype::kF32:
      as = GgmlType::kF32;
      break;
    case SafetensorsDtype::kF16:
      as = GgmlType::kF16;
      break;
    case SafetensorsDtype::kBF16:
      as = GgmlType::kBF16;
      break;
    default:
      throw ModelFileError(path(), tensor_item(info.name),
                           fmt::format("dtype {} cannot be converted to float (F32, F16, BF16 can)", info.dtype_name),
                           data_offset_ + info.begin);
  }
  dequantize_to_float(as, tensor_data(info), out);
}

std::unique_ptr<SafetensorsModel> SafetensorsModel::open(const std::filesystem::path& path) {
  auto model = std::make_unique<SafetensorsModel>();
  std::filesystem::path index_path;
  std::filesystem::path single;
  if (std::filesystem::is_directory(path)) {
    if (std::filesystem::exists(path / "model.safetensors.index.json")) {
      index_path = path / "model.safetensors.index.json";
    } else {
      single = path / "model.safetensors";
    }
  } else if (path.string().ends_with(".json")) {
    index_path = path;
  } else {
    single = path;
  }
  auto add = [&](const SafetensorsFile& shard) {
    for (const auto& t : shard.tensors()) {
      const auto [it, inserted] = model->index_.emplace(t.name, std::make_pair(&shard, &t));
      if (!inserted) {
        throw ModelFileError(shard.path(), tensor_item(t.name),
                             fmt::format("also present in {}", it->second.first->path().string()));
      }
    }
  };
  if (!single.empty()) {
    model->shards_.push_back(SafetensorsFile::open(single));
    add(*model->shards_.back());
    return model;
  }
  const json index = parse_model_json(read_small_file(index_path, kMaxIndexBytes), index_path, 0, "index");
  const auto map_it = index.is_object() ? index.find("weight_map") : index.end();
  if (!index.is_object() || map_it == index.end() || !map_it->is_object()) {
    throw ModelFileError(index_path, "key 'weight_map'", "missing or not an object");
  }
  std::map<std::string, const SafetensorsFile*> by_file;
  for (const auto& [tensor, shard] : map_it->items()) {
    if (!shard.is_string()) {
      throw ModelFileError(index_path, fmt::format("weight_map '{}'", tensor), "expected a file name");
    }
    const auto file_name = shard.get<std::string>();
    // NOTE: shard names must stay inside the checkpoint folder.
    if (file_name.empty() || file_name.find('/') != std::string::npos || file_name == "." || file_name == "..") {
      throw ModelFileError(index_path, fmt::format("weight_map '{}'", tensor),
                           fmt::format("bad shard file name '{}'", file_name));
    }
    if (!by_file.contains(file_name)) {
      model->shards_.push_back(SafetensorsFile::open(index_path.parent_path() / file_name));
      by_file.emplace(file_name, model->shards_.back().get());
      add(*model->shards_.back());
    }
    const SafetensorsFile* owner = by_file.at(file_name);
    if (owner->find_tensor(tensor) == nullptr) {
      throw ModelFileError(owner->path(), tensor_item(tensor),
                           fmt::format("listed in {} but not in this shard", index_path.string()));
    }
  }
  return model;
}

std::vector<std::string> SafetensorsModel::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, _] : index_) names.push_back(name);
  return names;
}

const SafetensorsTensorInfo* SafetensorsModel::find_tensor(std::string_view name, const SafetensorsFile** file) const {
  const auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  if (file != nullptr) *file = it->second.first;
  return it->second.second;
}

}  // namespace kvsafe::engine
