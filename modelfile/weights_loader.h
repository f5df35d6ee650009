#pragma once
// WeightsLoader: a model on disk -> ModelConfig + float tensors, whatever the format.
//
//   auto weights = WeightsLoader::open("SmolLM2-135M-Instruct.Q4_1.gguf");   // a GGUF file
//   auto weights = WeightsLoader::open("models/Llama-3.1-8B-Instruct/");     // an HF folder
//   const ModelConfig& config = weights->config();
//   std::vector<float> wq = weights->load("model.layers.0.self_attn.q_proj.weight");
//
// Tensor names and layouts are the HF ones of the model's family (see model_config.h):
// GGUF names are mapped (blk.0.attn_q.weight -> model.layers.0.self_attn.q_proj.weight),
// fused tensors split, Gemma norms returned as 1 + w, and the Q/K rows of GGUF "llama" files
// un-permuted from ggml's interleaved RoPE order back to HF's rotate_half order (a whole-row
// shuffle per head; engine/README.md "Q/K row order"). Loading dequantizes on demand from the
// mapping; nothing is read until load() is called.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modelfile/gguf_reader.h"
#include "modelfile/model_config.h"
#include "modelfile/safetensors_reader.h"

namespace kvsafe::engine {

// One loadable tensor.
struct WeightInfo {
  std::string name{};                 // HF name ("model.layers.0.mlp.up_proj.weight")
  std::vector<std::int64_t> shape{};  // row-major ([out, in] for a matrix)
  std::uint64_t n_elements = 0;
  std::string stored_type{};  // storage type in the file ("q4_1", "f32", "BF16")
  std::string stored_name{};  // name in the file ("blk.0.ffn_up.weight")
};

// A GGUF tensor's stored blocks, rows in the order load() returns them (Q/K rows
// un-permuted): `rows` rows of `row_len` elements, each row_len / block_size blocks of `type`.
struct StoredBlocks {
  GgmlType type = GgmlType::kF32;
  std::vector<std::byte> bytes{};
  std::uint64_t rows = 0, row_len = 0;
};

class WeightsLoader {
 public:
  enum class Format { kGguf, kSafetensors };

  // `path`: a .gguf file, or a folder (or its config.json) with config.json and
  // model.safetensors / model.safetensors.index.json. Throws ModelFileError for anything
  // malformed or unsupported (the message names file, key or tensor, and byte offset).
  static std::unique_ptr<WeightsLoader> open(const std::filesystem::path& path);

  Format format() const { return format_; }
  const ModelConfig& config() const { return config_; }
  // The GGUF file (metadata for the tokenizer), or nullptr for safetensors checkpoints.
  const GgufFile* gguf() const { return gguf_.get(); }
  // Sorted HF tensor names.
  std::vector<std::string> tensor_names() const;
  // nullptr when absent.
  const WeightInfo* find(std::string_view name) const;
  // Throws ModelFileError when absent.
  const WeightInfo& info(std::string_view name) const;
  // The tensor as float, row-major. Throws ModelFileError when absent or not convertible.
  std::vector<float> load(std::string_view name) const;
  // Same into `out` (exactly n_elements entries).
  void load(std::string_view name, std::span<float> out) const;
  // The tensor's blocks as stored, for keeping a quantized matrix quantized in memory
  // (engine/quantized_panels.h); nullopt for safetensors and for tensors load() changes
  // beyond a row order (Gemma's 1 + w norms). Throws ModelFileError when absent, or when its
  // rows are not whole blocks.
  std::optional<StoredBlocks> load_blocks(std::string_view name) const;
  // The ggml type load_blocks() would return, without reading anything; nullopt where it
  // returns nullopt. Throws ModelFileError when absent.
  std::optional<GgmlType> stored_ggml_type(std::string_view name) const;

  struct Source;  // where a tensor's bytes are and what to do to them (weights_loader.cpp)
  WeightsLoader();
  ~WeightsLoader();
  WeightsLoader(const WeightsLoader&) = delete;
  WeightsLoader& operator=(const WeightsLoader&) = delete;

 private:
  void open_gguf(const std::filesystem::path& path);
  void open_hf(const std::filesystem::path& folder);

  Format format_ = Format::kGguf;
  ModelConfig config_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<SafetensorsModel> safetensors_;
  std::map<std::string, std::unique_ptr<Source>, std::less<>> sources_;
};

// Un-permutes the rows of a GGUF llama Q or K projection (or bias), in place:
// [n_heads * head_dim rows of row_len floats], ggml interleaved order -> HF rotate_half
// order: hf_row(h, j * head_dim/2 + i) = gguf_row(h, 2 * i + j). The inverse of
// convert_hf_to_gguf.py's LlamaModel.permute.
void unpermute_qk_rows(std::span<float> data, std::int64_t n_heads, std::int64_t row_len);

}  // namespace kvsafe::engine
