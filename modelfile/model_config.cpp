#include "modelfile/model_config.h"

#include <fmt/format.h>

#include "modelfile/model_file_error.h"

namespace kvsafe::engine {

std::string to_string(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlama:
      return "llama";
    case ModelFamily::kMistral:
      return "mistral";
    case ModelFamily::kMixtral:
      return "mixtral";
    case ModelFamily::kQwen2:
      return "qwen2";
    case ModelFamily::kPhi3:
      return "phi3";
    case ModelFamily::kGemma2:
      return "gemma2";
    case ModelFamily::kOlmo2:
      return "olmo2";
  }
  return "unknown";
}

void validate_model_config(const ModelConfig& c, const std::string& source) {
  auto positive = [&](std::int64_t value, const char* field) {
    if (value <= 0) {
      throw ModelFileError(source, fmt::format("config '{}'", field), fmt::format("must be positive, got {}", value));
    }
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.hidden_size, "hidden_size");
  positive(c.intermediate_size, "intermediate_size");
  positive(c.num_layers, "num_layers");
  positive(c.num_heads, "num_heads");
  positive(c.num_kv_heads, "num_kv_heads");
  positive(c.head_dim, "head_dim");
  if (c.num_heads % c.num_kv_heads != 0) {
    throw ModelFileError(source, "config 'num_kv_heads'",
                         fmt::format("{} key/value heads do not divide {} query heads", c.num_kv_heads, c.num_heads));
  }
  if (c.rotary_dim <= 0 || c.rotary_dim > c.head_dim || c.rotary_dim % 2 != 0) {
    throw ModelFileError(source, "config 'rotary_dim'",
                         fmt::format("{} is not an even number in 2..head_dim ({})", c.rotary_dim, c.head_dim));
  }
  if (!(c.rms_norm_eps > 0.0) || !(c.rope_theta > 0.0)) {
    throw ModelFileError(source, "config 'rms_norm_eps'/'rope_theta'",
                         fmt::format("must be positive, got {} / {}", c.rms_norm_eps, c.rope_theta));
  }
  if (c.num_experts < 0 || c.num_experts_per_token < 0 || c.num_experts_per_token > c.num_experts) {
    throw ModelFileError(source, "config 'num_experts_per_token'",
                         fmt::format("{} of {} experts", c.num_experts_per_token, c.num_experts));
  }
  if (c.sliding_window && *c.sliding_window <= 0) {
    throw ModelFileError(source, "config 'sliding_window'", fmt::format("must be positive, got {}", *c.sliding_window));
  }
}

}  // namespace kvsafe::engine
