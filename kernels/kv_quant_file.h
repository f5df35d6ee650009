#pragma once
// `kvsafe quantize` as a library function: fake-quantize every tensor of a safetensors file
// through a spec and report error statistics. The file I/O is a minimal safetensors
// reader/writer for F32/F16/BF16 (huggingface/safetensors "Format": u64 little-endian
// header length, JSON header, data), so kernels/ needs no engine code.

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kernels/kv_quant_spec.h"

namespace kvsafe::kernels {

// Reads every tensor (F32, F16, BF16; other dtypes throw InputError naming the tensor).
std::map<std::string, at::Tensor> read_safetensors(const std::filesystem::path& path);
// Writes the tensors (float32/float16/bfloat16), names sorted; throws InputError on I/O.
void write_safetensors(const std::filesystem::path& path, const std::map<std::string, at::Tensor>& tensors);

struct TensorQuantStats {
  std::string name{};
  std::vector<std::int64_t> shape{};
  std::string side{};        // "key" | "value" (from the name: v_proj / value / .v. -> value)
  int layer = 0;             // from `layers.N.` in the name, else 0
  double mse = 0;            // mean squared error
  double max_abs_error = 0;  // max |x - x^|
  double snr_db = 0;         // 10 log10(sum x^2 / sum (x - x^)^2); +inf when exact
  double effective_bits = 16;
};

struct QuantizeFileOptions {
  Placement layout = Placement::kProjection;  // projection: [..., channels]; cache: [batch, heads, tokens, head_dim]
};

// Fake-quantizes every tensor of `input` into `output`; returns one row per tensor, sorted.
std::vector<TensorQuantStats> quantize_safetensors_file(const std::filesystem::path& input,
                                                        const std::filesystem::path& output, const KvQuantSpec& spec,
                                                        const QuantizeFileOptions& options = {});

}  // namespace kvsafe::kernels
