#include "modelfile/weights_loader.h"

#include <fmt/format.h>

#include <charconv>
#include <cstring>
#include <optional>

#include "modelfile/gguf_model_config.h"
#include "modelfile/hf_config.h"
#include "modelfile/model_file_error.h"

namespace kvsafe::engine {

// A loadable tensor = rows [row_begin, row_begin + rows) of a stored tensor viewed as
// [outer rows, row_len], then optional fix-ups.
struct WeightsLoader::Source {
  WeightInfo info;
  const GgufTensorInfo* gguf = nullptr;      // GGUF storage, or
  const SafetensorsFile* st_file = nullptr;  // safetensors storage
  const SafetensorsTensorInfo* st = nullptr;
  std::uint64_t row_begin = 0;
  std::uint64_t rows = 0;
  std::uint64_t row_len = 0;
  std::int64_t unpermute_heads = 0;  // > 0: un-permute Q/K rows (GGUF llama)
  bool add_one = false;              // Gemma HF norms: w -> 1 + w
};

namespace {

std::uint64_t product(const std::vector<std::int64_t>& v) {
  std::uint64_t n = 1;
  for (const auto d : v) n *= static_cast<std::uint64_t>(d);
  return n;
}

// "blk.12.attn_q.weight" -> (12, "attn_q.weight").
std::optional<std::pair<std::int64_t, std::string>> split_block_name(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  name.remove_prefix(kPrefix.size());
  const auto dot = name.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::int64_t layer = 0;
  const auto [ptr, ec] = std::from_chars(name.data(), name.data() + dot, layer);
  if (ec != std::errc{} || ptr != name.data() + dot) return std::nullopt;
  return std::make_pair(layer, std::string(name.substr(dot + 1)));
}

}  // namespace

namespace {

// The row shuffle of unpermute_qk_rows() on rows of `row_bytes` bytes.
void unpermute_rows(std::span<std::byte> data, std::int64_t n_heads, std::int64_t row_bytes) {
  const auto total_rows = static_cast<std::int64_t>(data.size()) / row_bytes;
  const std::int64_t head_rows = total_rows / n_heads;
  const std::int64_t half = head_rows / 2;
  std::vector<std::byte> head(static_cast<std::size_t>(head_rows * row_bytes));
  for (std::int64_t h = 0; h < n_heads; ++h) {
    std::byte* base = data.data() + h * head_rows * row_bytes;
    std::memcpy(head.data(), base, head.size());
    for (std::int64_t i = 0; i < half; ++i) {
      for (std::int64_t j = 0; j < 2; ++j) {
        std::memcpy(base + (j * half + i) * row_bytes, head.data() + (2 * i + j) * row_bytes,
                    static_cast<std::size_t>(row_bytes));
      }
    }
  }
}

// Throws InputError unless `size` values are n_heads heads of an even number of rows of row_len.
void check_unpermute_geometry(std::uint64_t size, std::int64_t n_heads, std::int64_t row_len) {
  KVSAFE_CHECK(n_heads > 0 && row_len > 0, "unpermute_qk_rows: bad geometry");
  const auto total_rows = static_cast<std::int64_t>(size) / row_len;
  KVSAFE_CHECK(static_cast<std::uint64_t>(total_rows * row_len) == size && total_rows % n_heads == 0 &&
                   (total_rows / n_heads) % 2 == 0,
               "unpermute_qk_rows: ", size, " values are not ", n_heads, " heads of an even number of rows of ",
               row_len);
}

}  // namespace

void unpermute_qk_rows(std::span<float> data, std::int64_t n_heads, std::int64_t row_len) {
  check_unpermute_geometry(data.size(), n_heads, row_len);
  unpermute_rows(std::as_writable_bytes(data), n_heads, row_len * static_cast<std::int64_t>(sizeof(float)));
}

WeightsLoader::WeightsLoader() = default;
WeightsLoader::~WeightsLoader() = default;

std::unique_ptr<WeightsLoader> WeightsLoader::open(const std::filesystem::path& path) {
  auto loader = std::make_unique<WeightsLoader>();
  std::filesystem::path target = path;
  if (target.filename() == "config.json") target = target.parent_path();
  if (std::filesystem::is_directory(target)) {
    loader->open_hf(target);
  } else {
    loader->open_gguf(target);
  }
  return loader;
}

void WeightsLoader::open_gguf(const std::filesystem::path& path) {
  format_ = Format::kGguf;
  gguf_ = GgufFile::open(path);
  config_ = model_config_from_gguf(*gguf_);
  const bool llama_permuted = gguf_->architecture() == "llama";
  const ModelConfig& c = config_;

  auto add = [&](const std::string& name, const GgufTensorInfo& t, std::uint64_t row_begin, std::uint64_t rows,
                 std::vector<std::int64_t> shape) {
    auto src = std::make_unique<Source>();
    src->gguf = &t;
    src->row_len = t.dims.empty() ? 1 : static_cast<std::uint64_t>(t.dims[0]);
    src->row_begin = row_begin;
    src->rows = rows;
    src->info.name = name;
    src->info.shape = std::move(shape);
    src->info.n_elements = product(src->info.shape);
    src->info.stored_type = to_string(t.type);
    src->info.stored_name = t.name;
    Source& ref = *src;
    if (t.dims.size() == 1) {  // a vector: every element is a row
      ref.row_len = 1;
    }
    sources_[name] = std::move(src);
    return &ref;
  };
  auto add_whole = [&](const std::string& name, const GgufTensorInfo& t) {
    const auto shape = t.shape();
    const std::uint64_t rows = t.dims.size() <= 1 ? t.n_elements : t.n_elements / t.dims[0];
    return add(name, t, 0, rows, shape);
  };
  // Splits the outer rows of `t` into pieces of the given row counts.
  auto add_split = [&](const GgufTensorInfo& t, const std::vector<std::string>& names,
                       const std::vector<std::int64_t>& counts) {
    std::int64_t total = 0;
    for (const auto n : counts) total += n;
    const auto shape = t.shape();
    const std::int64_t outer = shape.empty() ? 1 : shape[0];
    if (total != outer) {
      throw ModelFileError(gguf_->path(), fmt::format("tensor '{}'", t.name),
                           fmt::format("has {} rows, the config implies {}", outer, total), t.info_offset);
    }
    std::uint64_t begin = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto piece_shape = shape;
      piece_shape[0] = counts[i];
      add(names[i], t, begin, static_cast<std::uint64_t>(counts[i]), piece_shape);
      begin += static_cast<std::uint64_t>(counts[i]);
    }
  };

  for (const GgufTensorInfo& t : gguf_->tensors()) {
    const std::string& n = t.name;
    if (n == "token_embd.weight") {
      add_whole("model.embed_tokens.weight", t);
      continue;
    }
    if (n == "output_norm.weight") {
      add_whole("model.norm.weight", t);
      continue;
    }
    if (n == "output.weight") {
      add_whole("lm_head.weight", t);
      continue;
    }
    const auto block = split_block_name(n);
    if (!block) {
      add_whole(n, t);
      continue;
    }  // rope_freqs etc.: kept under their own name
    const auto& [layer, rest] = *block;
    const std::string lp = fmt::format("model.layers.{}.", layer);
    const auto suffix_at = rest.rfind('.');
    const std::string base = rest.substr(0, suffix_at);
    const std::string suffix = suffix_at == std::string::npos ? "" : rest.substr(suffix_at);
    const bool gemma_or_olmo = c.family == ModelFamily::kGemma2 || c.family == ModelFamily::kOlmo2;
    static const std::map<std::string, std::string, std::less<>> kCommon = {
        {"attn_norm", "input_layernorm"},
        {"attn_q", "self_attn.q_proj"},
        {"attn_k", "self_attn.k_proj"},
        {"attn_v", "self_attn.v_proj"},
        {"attn_output", "self_attn.o_proj"},
        {"attn_q_norm", "self_attn.q_norm"},
        {"attn_k_norm", "self_attn.k_norm"},
        {"attn_post_norm", "post_attention_layernorm"},
        {"ffn_post_norm", "post_feedforward_layernorm"},
        {"ffn_gate", "mlp.gate_proj"},
        {"ffn_down", "mlp.down_proj"},
        {"ffn_gate_inp", "block_sparse_moe.gate"},
    };
    if (base == "ffn_norm") {
      add_whole(lp + (gemma_or_olmo ? "pre_feedforward_layernorm" : "post_attention_layernorm") + suffix, t);
    } else if (base == "ffn_up") {
      if (c.family == ModelFamily::kPhi3 &&
          gguf_->find_tensor(fmt::format("blk.{}.ffn_gate.weight", layer)) == nullptr) {
        add_split(t, {lp + "mlp.gate_proj" + suffix, lp + "mlp.up_proj" + suffix},
                  {c.intermediate_size, c.intermediate_size});
      } else {
        add_whole(lp + "mlp.up_proj" + suffix, t);
      }
    } else if (base == "attn_qkv") {
      add_split(t,
                {lp + "self_attn.q_proj" + suffix, lp + "self_attn.k_proj" + suffix, lp + "self_attn.v_proj" + suffix},
                {c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.num_kv_heads * c.head_dim});
    } else if (base == "ffn_gate_exps" || base == "ffn_down_exps" || base == "ffn_up_exps") {
      // [n_expert, rows, cols] stacked experts -> one tensor per expert (Mixtral w1/w2/w3).
      const std::string w = base == "ffn_gate_exps" ? "w1" : base == "ffn_down_exps" ? "w2" : "w3";
      const auto shape = t.shape();
      if (shape.size() != 3) {
        throw ModelFileError(gguf_->path(), fmt::format("tensor '{}'", n), "stacked experts must have 3 dimensions",
                             t.info_offset);
      }
      const auto per = static_cast<std::uint64_t>(shape[1]);
      for (std::int64_t e = 0; e < shape[0]; ++e) {
        add(fmt::format("{}block_sparse_moe.experts.{}.{}{}", lp, e, w, suffix), t, static_cast<std::uint64_t>(e) * per,
            per, {shape[1], shape[2]});
      }
    } else if (base.starts_with("ffn_gate.") || base.starts_with("ffn_down.") || base.starts_with("ffn_up.")) {
      // Legacy per-expert tensors: blk.N.ffn_gate.E.weight.
      const auto dot = base.find('.');
      const std::string kind = base.substr(0, dot);
      const std::string w = kind == "ffn_gate" ? "w1" : kind == "ffn_down" ? "w2" : "w3";
      add_whole(fmt::format("{}block_sparse_moe.experts.{}.{}{}", lp, base.substr(dot + 1), w, suffix), t);
    } else if (const auto it = kCommon.find(base); it != kCommon.end()) {
      add_whole(lp + it->second + suffix, t);
    } else {
      add_whole(n, t);
    }
  }
  if (llama_permuted) {
    // NOTE: convert_hf_to_gguf.py permutes Q and K of "llama" models for ggml's adjacent-pair
    // RoPE; undo it so that every source has HF's rotate_half order (README "Q/K row order").
    for (std::int64_t l = 0; l < c.num_layers; ++l) {
      for (const char* w : {"weight", "bias"}) {
        const auto q = sources_.find(fmt::format("model.layers.{}.self_attn.q_proj.{}", l, w));
        if (q != sources_.end()) q->second->unpermute_heads = c.num_heads;
        const auto k = sources_.find(fmt::format("model.layers.{}.self_attn.k_proj.{}", l, w));
        if (k != sources_.end()) k->second->unpermute_heads = c.num_kv_heads;
      }
    }
  }
}

void WeightsLoader::open_hf(const std::filesystem::path& folder) {
  format_ = Format::kSafetensors;
  config_ = read_hf_config(folder / "config.json");
  safetensors_ = SafetensorsModel::open(folder);
  const ModelConfig& c = config_;
  for (const std::string& name : safetensors_->tensor_names()) {
    const SafetensorsFile* file = nullptr;
    const SafetensorsTensorInfo* t = safetensors_->find_tensor(name, &file);
    auto make = [&](const std::string& as, std::uint64_t row_begin, std::int64_t rows) {
      auto src = std::make_unique<Source>();
      src->st = t;
      src->st_file = file;
      const std::uint64_t outer = t->shape.empty() ? 1 : static_cast<std::uint64_t>(t->shape[0]);
      src->row_len = outer == 0 ? 0 : t->n_elements / outer;
      src->row_begin = row_begin;
      src->rows = static_cast<std::uint64_t>(rows);
      src->info.name = as;
      src->info.shape = t->shape.empty() ? std::vector<std::int64_t>{} : t->shape;
      if (!src->info.shape.empty()) src->info.shape[0] = rows;
      src->info.n_elements = product(src->info.shape);
      src->info.stored_type = t->dtype_name;
      src->info.stored_name = t->name;
      if (c.family == ModelFamily::kGemma2 && as.ends_with("norm.weight")) src->add_one = true;
      sources_[as] = std::move(src);
    };
    const std::int64_t outer = t->shape.empty() ? 1 : t->shape[0];
    auto split = [&](const std::vector<std::string>& names, const std::vector<std::int64_t>& counts) {
      std::int64_t total = 0;
      for (const auto n : counts) total += n;
      if (total != outer) {
        throw ModelFileError(file->path(), fmt::format("tensor '{}'", name),
                             fmt::format("has {} rows, the config implies {}", outer, total));
      }
      std::uint64_t begin = 0;
      for (std::size_t i = 0; i < names.size(); ++i) {
        make(names[i], begin, counts[i]);
        begin += static_cast<std::uint64_t>(counts[i]);
      }
    };
    if (c.family == ModelFamily::kPhi3 && name.ends_with("self_attn.qkv_proj.weight")) {
      const std::string lp = name.substr(0, name.size() - std::string_view("qkv_proj.weight").size());
      split({lp + "q_proj.weight", lp + "k_proj.weight", lp + "v_proj.weight"},
            {c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.num_kv_heads * c.head_dim});
    } else if (c.family == ModelFamily::kPhi3 && name.ends_with("mlp.gate_up_proj.weight")) {
      const std::string lp = name.substr(0, name.size() - std::string_view("gate_up_proj.weight").size());
      split({lp + "gate_proj.weight", lp + "up_proj.weight"}, {c.intermediate_size, c.intermediate_size});
    } else {
      make(name, 0, outer);
    }
  }
}

std::vector<std::string> WeightsLoader::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(sources_.size());
  for (const auto& [name, _] : sources_) names.push_back(name);
  return names;
}

const WeightInfo* WeightsLoader::find(std::string_view name) const {
  const auto it = sources_.find(name);
  return it == sources_.end() ? nullptr : &it->second->info;
}

const WeightInfo& WeightsLoader::info(std::string_view name) const {
  const WeightInfo* w = find(name);
  if (w == nullptr) {
    const auto file = gguf_ ? gguf_->path() : safetensors_->shards().front()->path();
    throw ModelFileError(file, fmt::format("tensor '{}'", name), "no such tensor");
  }
  return *w;
}

std::vector<float> WeightsLoader::load(std::string_view name) const {
  std::vector<float> out(info(name).n_elements);
  load(name, out);
  return out;
}

std::optional<GgmlType> WeightsLoader::stored_ggml_type(std::string_view name) const {
  const Source& s = *sources_.find(info(name).name)->second;
  if (s.gguf == nullptr || s.add_one) return std::nullopt;
  return s.gguf->type;
}

std::optional<StoredBlocks> WeightsLoader::load_blocks(std::string_view name) const {
  const Source& s = *sources_.find(info(name).name)->second;
  if (s.gguf == nullptr || s.add_one) return std::nullopt;
  const GgufTensorInfo& t = *s.gguf;
  const auto traits = ggml_type_traits(static_cast<std::uint32_t>(t.type));
  if (!traits.has_value() || traits->block_size == 0 || s.row_len % traits->block_size != 0) {
    throw ModelFileError(gguf_->path(), fmt::format("tensor '{}'", t.name),
                         fmt::format("rows of {} elements are not whole blocks of {}", s.row_len,
                                     traits.has_value() ? std::string(traits->name) : to_string(t.type)),
                         gguf_->data_offset() + t.offset);
  }
  const std::uint64_t row_bytes = s.row_len / traits->block_size * traits->type_size;
  const auto bytes = gguf_->tensor_data(t).subspan(s.row_begin * row_bytes, s.rows * row_bytes);
  StoredBlocks out{.type = t.type,
                   .bytes = std::vector<std::byte>(bytes.begin(), bytes.end()),
                   .rows = s.rows,
                   .row_len = s.row_len};
  if (s.unpermute_heads > 0) {
    check_unpermute_geometry(s.rows * s.row_len, s.unpermute_heads, static_cast<std::int64_t>(s.row_len));
    unpermute_rows(out.bytes, s.unpermute_heads, static_cast<std::int64_t>(row_bytes));
  }
  return out;
}

void WeightsLoader::load(std::string_view name, std::span<float> out) const {
  const WeightInfo& w = info(name);
  const Source& s = *sources_.find(name)->second;
  const std::filesystem::path file = s.gguf ? gguf_->path() : s.st_file->path();
  if (out.size() != w.n_elements) {
    throw ModelFileError(file, fmt::format("tensor '{}'", name),
                         fmt::format("output has {} elements, the tensor {}", out.size(), w.n_elements));
  }
  if (s.gguf != nullptr) {
    const GgufTensorInfo& t = *s.gguf;
    const auto traits = ggml_type_traits(static_cast<std::uint32_t>(t.type));
    if (!traits->dequantizable) {
      throw ModelFileError(file, fmt::format("tensor '{}'", t.name),
                           fmt::format("cannot dequantize type {}", traits->name), gguf_->data_offset() + t.offset);
    }
    const std::uint64_t row_bytes = s.row_len / traits->block_size * traits->type_size;
    const auto bytes = gguf_->tensor_data(t).subspan(s.row_begin * row_bytes, s.rows * row_bytes);
    dequantize_to_float(t.type, bytes, out);
  } else {
    const SafetensorsTensorInfo& t = *s.st;
    if (s.row_begin == 0 && s.rows * s.row_len == t.n_elements) {
      s.st_file->to_float(t, out);
    } else {
      const std::size_t esize = safetensors_dtype_size(t.dtype);
      const auto bytes = s.st_file->tensor_data(t).subspan(s.row_begin * s.row_len * esize, s.rows * s.row_len * esize);
      GgmlType as = t.dtype == SafetensorsDtype::kF32   ? GgmlType::kF32
                    : t.dtype == SafetensorsDtype::kF16 ? GgmlType::kF16
                    : t.dtype == SafetensorsDtype::kBF16
                        ? GgmlType::kBF16
                        : throw ModelFileError(file, fmt::format("tensor '{}'", t.name),
                                               fmt::format("dtype {} cannot be converted to float", t.dtype_name));
      dequantize_to_float(as, bytes, out);
    }
  }
  if (s.unpermute_heads > 0) {
    unpermute_qk_rows(out, s.unpermute_heads, static_cast<std::int64_t>(s.row_len));
  }
  if (s.add_one) {
    for (float& x : out) x = 1.0f + x;
  }
}

}  // namespace kvsafe::engine
