#pragma once
// Model: a decoder-only transformer loaded once (weights -> ATen tensors on one device, in
// one dtype) and run by forward() over a left-padded batch, with a KvCache that holds what
// earlier calls computed.
//
//   auto model = Model::load("SmolLM2-135M-Instruct.Q4_1.gguf");            // CPU, float32
//   KvCache cache(*model, /*batch=*/2);                                     // plain model
//   at::Tensor logits = model->forward(tokens, valid, cache, {.logits = LogitsMode::kLast});
//   // prefill: tokens int64 [2, T] left-padded, valid bool [2, T]; then one token per step
//
// Families (ModelConfig::family): Llama (also SmolLM2, DeepSeek, Yi), Mistral, Qwen2, Phi-3,
// Gemma-2, Mixtral, OLMo-2, one file each (engine/family_*.cpp) on shared blocks
// (engine/transformer_blocks.h). Numerics follow Hugging Face transformers' eager
// implementations: RMSNorm and softmax in float32, RoPE tables in float32, logits float32.
//
// Positions are per sequence: a token's RoPE position counts the valid tokens before it in
// its own sequence, so left padding never shifts RoPE. Padding slots never serve as keys for
// real tokens. A padding query, which has no key it may see, attends to every key of the
// call or gets a zero attention output (ForwardOptions::padding_queries, the two behaviours
// of transformers' SDPA path across torch versions); either keeps its activations finite,
// and they matter only to the paper's batch-wide projection statistics.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/padding_queries.h"
#include "modelfile/model_config.h"

namespace kvsafe::engine {

class KvCache;
class ActivationCapture;
struct KvCallLog;

// A vector added to the residual stream after decoder layer `layer` (HF hidden_states[layer + 1],
// the input of layer + 1) at every position of every forward call: activation addition
// (Arditi et al. 2024's actadd). kvsafe uses it to make a small model refuse through its
// refusal direction, a testbed that is marked steered wherever its results appear (issue 25).
struct ResidualSteering {
  std::int64_t layer = 0;
  std::vector<float> vector{};  // hidden_size values, already scaled
};

struct ModelLoadOptions {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:N"
  // "auto": float32 on CPU, bfloat16 on CUDA; or "float32", "bfloat16", "float16".
  std::string dtype = "auto";
  // Intra-op threads for CPU math; 0 = one per hardware core (Debian's libtorch starts with
  // 1), < 0 = leave libtorch's setting alone.
  int threads = 0;
  // float32 on the CPU: GGUF q4_0 / q4_1 / q8_0 matrices stay in their blocks in memory and
  // are expanded as the products run (engine/quantized_panels.h): the same floats, so the
  // same outputs, with 3-7x less memory and weight traffic. false expands them at load, as
  // every other type is.
  bool keep_quantized = true;
  // Added after a layer on every forward call when set; load throws InputError when its layer
  // or size does not fit the model.
  std::optional<ResidualSteering> steering{};
};

// What forward() returns.
enum class LogitsMode {
  kAll,   // [batch, tokens, vocab]
  kLast,  // [batch, vocab]: the last slot of each row (the last real token with left padding)
  kNone,  // an undefined tensor: only the cache and the hooks are wanted
};

struct ForwardOptions {
  LogitsMode logits = LogitsMode::kLast;  // which logits to compute (the lm_head is costly)
  PaddingQueries padding_queries = PaddingQueries::kAttendAll;
  ActivationCapture* capture = nullptr;  // records activations when set; nullptr costs nothing
  KvCallLog* kv_log = nullptr;           // per-call KV quantization MSE records when set
};

class Model {
 public:
  // Reads `path` (GGUF file or HF folder, modelfile/weights_loader.h) and converts every tensor
  // to options.dtype on options.device. Throws ModelFileError for bad files, InputError for
  // bad options (unknown device or dtype, CUDA without a CUDA build, unsupported RoPE type).
  static std::unique_ptr<Model> load(const std::filesystem::path& path, const ModelLoadOptions& options = {});

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const;
  const std::filesystem::path& path() const;
  c10::Device device() const;
  at::ScalarType dtype() const;
  std::int64_t parameter_count() const;  // elements in the weights (tied embeddings once)
  // Bytes the weights take on the device (quantized matrices at their stored size).
  std::int64_t weight_bytes() const;

  // One forward call over new tokens appended to `cache` (empty for a prefill).
  //   tokens: int64 [batch, n] on any device; valid: bool [batch, n] (false = padding),
  //   undefined = all valid. batch must equal cache.batch(). Padding may appear anywhere
  //   in a prefill (left padding is the convention); later calls usually pass n = 1.
  // Returns float32 logits per `options.logits`. Throws InputError on shape mismatches.
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& valid, KvCache& cache,
                     const ForwardOptions& options = {}) const;

  struct Impl;  // weights and the family's layer function (model.cpp)
  const Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvsafe::engine
