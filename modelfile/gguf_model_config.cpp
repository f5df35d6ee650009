#include "modelfile/gguf_model_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "modelfile/model_file_error.h"

namespace kvsafe::engine {
namespace {

std::vector<double> tensor_as_doubles(const GgufFile& file, const GgufTensorInfo& info) {
  const std::vector<float> values = file.dequantize(info);
  return {values.begin(), values.end()};
}

}  // namespace

std::vector<std::string> supported_gguf_architectures() {
  return {"llama", "qwen2", "phi3", "gemma2", "olmo2"};
}

ModelConfig model_config_from_gguf(const GgufFile& file) {
  const std::string arch = file.architecture();
  ModelConfig c;
  c.architecture = arch;
  if (arch == "llama") {
    c.family = ModelFamily::kLlama;
  } else if (arch == "qwen2") {
    c.family = ModelFamily::kQwen2;
  } else if (arch == "phi3") {
    c.family = ModelFamily::kPhi3;
  } else if (arch == "gemma2") {
    c.family = ModelFamily::kGemma2;
  } else if (arch == "olmo2") {
    c.family = ModelFamily::kOlmo2;
  } else {
    throw ModelFileError(file.path(), "key 'general.architecture'",
                         fmt::format("unsupported architecture '{}' (supported: {})", arch,
                                     fmt::join(supported_gguf_architectures(), ", ")),
                         file.find("general.architecture")->offset);
  }
  const std::string p = arch + ".";
  auto req_int = [&](const std::string& key) {
    const auto v = file.get_int(key);
    if (!v) throw ModelFileError(file.path(), fmt::format("key '{}'", key), "missing");
    return *v;
  };
  c.hidden_size = req_int(p + "embedding_length");
  c.num_layers = req_int(p + "block_count");
  c.intermediate_size = req_int(p + "feed_forward_length");
  c.num_heads = req_int(p + "attention.head_count");
  c.num_kv_heads = file.get_int(p + "attention.head_count_kv").value_or(c.num_heads);
  if (c.num_heads <= 0) {
    throw ModelFileError(file.path(), fmt::format("key '{}attention.head_count'", p),
                         fmt::format("must be positive, got {}", c.num_heads));
  }
  c.head_dim = file.get_int(p + "attention.key_length").value_or(c.hidden_size / c.num_heads);
  c.rotary_dim = file.get_int(p + "rope.dimension_count").value_or(c.head_dim);
  c.max_position_embeddings = file.get_int(p + "context_length").value_or(2048);
  c.rms_norm_eps = file.get_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-5);
  c.rope_theta = file.get_float(p + "rope.freq_base").value_or(10000.0);
  if (const GgufTensorInfo* embd = file.find_tensor("token_embd.weight"); embd != nullptr && embd->dims.size() == 2) {
    c.vocab_size = embd->dims[1];
  } else if (const auto v = file.get_int(p + "vocab_size")) {
    c.vocab_size = *v;
  } else {
    c.vocab_size = static_cast<std::int64_t>(file.get_string_array("tokenizer.ggml.tokens").size());
  }
  c.tie_word_embeddings = file.find_tensor("output.weight") == nullptr;
  c.attention_bias =
      file.find_tensor("blk.0.attn_q.bias") != nullptr || file.find_tensor("blk.0.attn_qkv.bias") != nullptr;
  c.sliding_window = file.get_int(p + "attention.sliding_window");
  c.num_experts = file.get_int(p + "expert_count").value_or(0);
  c.num_experts_per_token = file.get_int(p + "expert_used_count").value_or(0);
  if (c.family == ModelFamily::kLlama && c.num_experts > 0) c.family = ModelFamily::kMixtral;

  // RoPE scaling: metadata keys, or factors stored as tensors.
  RopeScaling& s = c.rope_scaling;
  const auto type = file.get_string(p + "rope.scaling.type");
  const auto factor = file.get_float(p + "rope.scaling.factor");  // or legacy rope.scale_linear
  if (type && *type == "linear") {
    s.type = RopeScaling::Type::kLinear;
  } else if (type && *type == "yarn") {
    s.type = RopeScaling::Type::kYarn;
  } else if (!type && factor && file.has(p + "rope.scale_linear")) {
    s.type = RopeScaling::Type::kLinear;  // legacy key implies linear
  }
  if (s.type != RopeScaling::Type::kNone) s.factor = factor.value_or(1.0);
  s.original_max_position_embeddings = file.get_int(p + "rope.scaling.original_context_length").value_or(0);
  if (const GgufTensorInfo* freqs = file.find_tensor("rope_freqs.weight")) {
    s.type = RopeScaling::Type::kFreqFactors;
    s.freq_factors = tensor_as_doubles(file, *freqs);
  }
  const GgufTensorInfo* long_f = file.find_tensor("rope_factors_long.weight");
  const GgufTensorInfo* short_f = file.find_tensor("rope_factors_short.weight");
  if (long_f != nullptr && short_f != nullptr) {
    s.type = RopeScaling::Type::kLongRope;
    s.long_factor = tensor_as_doubles(file, *long_f);
    s.short_factor = tensor_as_doubles(file, *short_f);
    s.attention_factor = file.get_float(p + "rope.scaling.attn_factor");
  }

  switch (c.family) {
    case ModelFamily::kGemma2:
      c.hidden_act = "gelu_pytorch_tanh";
      c.norm_plus_one = true;  // NOTE: convert_hf_to_gguf.py already stored 1 + w
      c.scale_embeddings = true;
      c.norm_placement = NormPlacement::kPreAndPost;
      c.sliding_window_pattern = 2;
      c.attn_logit_softcapping = file.get_float(p + "attn_logit_softcapping").value_or(50.0);
      c.final_logit_softcapping = file.get_float(p + "final_logit_softcapping").value_or(30.0);
      // NOTE: GGUF has no query_pre_attn_scalar; llama.cpp uses hidden/heads for the 27B
      // (46 layers) and head_dim otherwise, which is what the HF configs say.
      c.query_pre_attn_scalar = static_cast<double>(c.num_layers == 46 ? c.hidden_size / c.num_heads : c.head_dim);
      break;
    case ModelFamily::kOlmo2:
      c.qk_norm = true;
      c.norm_placement = NormPlacement::kPost;
      break;
    case ModelFamily::kQwen2:
      c.attention_bias = true;
      break;
    default:
      break;
  }
  validate_model_config(c, file.path().string());
  return c;
}

}  // namespace kvsafe::engine
