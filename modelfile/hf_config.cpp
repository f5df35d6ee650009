#include "modelfile/hf_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <limits>

#include "modelfile/model_file_error.h"
#include "modelfile/model_json.h"

namespace kvsafe::engine {
namespace {

using nlohmann::json;

constexpr std::uint64_t kMaxConfigBytes = 16ULL << 20;

struct ModelTypeEntry {
  std::string_view model_type;
  ModelFamily family;
};

// HF model_type -> family. NOTE: DeepSeek-LLM-7B and Yi ship model_type "llama"; old Yi
// checkpoints used "Yi" with the same layout.
constexpr ModelTypeEntry kModelTypes[] = {
    {"llama", ModelFamily::kLlama},     {"Yi", ModelFamily::kLlama},    {"mistral", ModelFamily::kMistral},
    {"mixtral", ModelFamily::kMixtral}, {"qwen2", ModelFamily::kQwen2}, {"phi3", ModelFamily::kPhi3},
    {"gemma2", ModelFamily::kGemma2},   {"olmo2", ModelFamily::kOlmo2},
};

class ConfigReader {
 public:
  ConfigReader(const json& root, const std::filesystem::path& source) : root_(root), source_(source) {}

  [[noreturn]] void fail(std::string_view key, const std::string& detail) const {
    throw ModelFileError(source_, fmt::format("key '{}'", key), detail);
  }

  const json* find(std::string_view key) const {
    const auto it = root_.find(key);
    if (it == root_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::optional<std::int64_t> opt_int(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (v->is_number_integer()) return v->get<std::int64_t>();
    // Some configs write integers as floats ("max_position_embeddings": 4096.0).
    if (v->is_number_float()) {
      const double d = v->get<double>();
      if (std::trunc(d) == d && std::abs(d) < 9.0e15) return static_cast<std::int64_t>(d);
    }
    fail(key, fmt::format("expected an integer, found {}", v->dump()));
  }
  std::int64_t req_int(std::string_view key) const {
    const auto v = opt_int(key);
    if (!v) fail(key, "missing");
    return *v;
  }
  std::int64_t int_or(std::string_view key, std::int64_t fallback) const { return opt_int(key).value_or(fallback); }
  std::optional<double> opt_float(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) fail(key, fmt::format("expected a number, found {}", v->dump()));
    return v->get<double>();
  }
  double float_or(std::string_view key, double fallback) const { return opt_float(key).value_or(fallback); }
  bool bool_or(std::string_view key, bool fallback) const {
    const json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) fail(key, fmt::format("expected true/false, found {}", v->dump()));
    return v->get<bool>();
  }
  std::optional<std::string> opt_string(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) fail(key, fmt::format("expected a string, found {}", v->dump()));
    return v->get<std::string>();
  }

 private:
  const json& root_;
  const std::filesystem::path& source_;
};

std::vector<double> float_list(const ConfigReader& r, const json& obj, std::string_view key,
                               std::string_view full_key) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_array()) r.fail(full_key, "expected a list of numbers");
  std::vector<double> out;
  for (const json& x : *it) {
    if (!x.is_number()) r.fail(full_key, fmt::format("expected numbers, found {}", x.dump()));
    out.push_back(x.get<double>());
  }
  return out;
}

RopeScaling parse_rope_scaling(const ConfigReader& r, std::int64_t original_max_top_level) {
  RopeScaling s;
  const json* v = r.find("rope_scaling");
  if (v == nullptr) return s;
  if (!v->is_object()) r.fail("rope_scaling", "expected an object or null");
  auto sub_string = [&](std::string_view k) -> std::optional<std::string> {
    const auto it = v->find(k);
    if (it == v->end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) r.fail(fmt::format("rope_scaling.{}", k), "expected a string");
    return it->get<std::string>();
  };
  auto sub_float = [&](std::string_view k) -> std::optional<double> {
    const auto it = v->find(k);
    if (it == v->end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) r.fail(fmt::format("rope_scaling.{}", k), "expected a number");
    return it->get<double>();
  };
  // transformers accepts both "rope_type" (new) and "type" (old).
  auto type = sub_string("rope_type");
  if (!type) type = sub_string("type");
  if (!type) r.fail("rope_scaling.rope_type", "missing");
  if (*type == "default") return s;
  if (*type == "linear") {
    s.type = RopeScaling::Type::kLinear;
  } else if (*type == "dynamic") {
    s.type = RopeScaling::Type::kDynamic;
  } else if (*type == "llama3") {
    s.type = RopeScaling::Type::kLlama3;
    s.low_freq_factor = sub_float("low_freq_factor").value_or(1.0);
    s.high_freq_factor = sub_float("high_freq_factor").value_or(4.0);
  } else if (*type == "longrope" || *type == "su") {
    s.type = RopeScaling::Type::kLongRope;
    s.short_factor = float_list(r, *v, "short_factor", "rope_scaling.short_factor");
    s.long_factor = float_list(r, *v, "long_factor", "rope_scaling.long_factor");
  } else if (*type == "yarn") {
    s.type = RopeScaling::Type::kYarn;
  } else {
    r.fail("rope_scaling.rope_type",
           fmt::format("unsupported type '{}' (supported: linear, dynamic, llama3, longrope, su, "
                       "yarn)",
                       *type));
  }
  s.factor = sub_float("factor").value_or(1.0);
  s.attention_factor = sub_float("attention_factor");
  if (const auto om = sub_float("original_max_position_embeddings")) {
    s.original_max_position_embeddings = static_cast<std::int64_t>(*om);
  } else {
    s.original_max_position_embeddings = original_max_top_level;  // Phi-3 keeps it top-level
  }
  return s;
}

}  // namespace

std::vector<std::string> supported_hf_model_types() {
  std::vector<std::string> out;
  for (const auto& e : kModelTypes) out.emplace_back(e.model_type);
  return out;
}

ModelConfig parse_hf_config(std::string_view json_text, const std::filesystem::path& source) {
  const json root = parse_model_json(json_text, source, 0, "config.json");
  if (!root.is_object()) throw ModelFileError(source, "config.json", "expected a JSON object");
  const ConfigReader r(root, source);

  const auto model_type = r.opt_string("model_type");
  if (!model_type) r.fail("model_type", "missing");
  const ModelTypeEntry* entry = nullptr;
  for (const auto& e : kModelTypes) {
    if (e.model_type == *model_type) entry = &e;
  }
  if (entry == nullptr) {
    r.fail("model_type", fmt::format("unsupported architecture '{}' (supported: {})", *model_type,
                                     fmt::join(supported_hf_model_types(), ", ")));
  }

  ModelConfig c;
  c.family = entry->family;
  c.architecture = *model_type;
  c.vocab_size = r.req_int("vocab_size");
  c.hidden_size = r.req_int("hidden_size");
  c.intermediate_size = r.req_int("intermediate_size");
  c.num_layers = r.req_int("num_hidden_layers");
  c.num_heads = r.req_int("num_attention_heads");
  if (c.num_heads <= 0) r.fail("num_attention_heads", "must be positive");
  c.num_kv_heads = r.int_or("num_key_value_heads", c.num_heads);
  c.head_dim = r.int_or("head_dim", c.hidden_size / c.num_heads);
  c.max_position_embeddings = r.int_or("max_position_embeddings", 2048);
  c.rms_norm_eps = r.float_or("rms_norm_eps", 1e-6);
  c.rope_theta = r.float_or("rope_theta", 10000.0);
  const double partial = r.float_or("partial_rotary_factor", 1.0);
  c.rotary_dim = static_cast<std::int64_t>(static_cast<double>(c.head_dim) * partial);
  c.rope_scaling = parse_rope_scaling(r, r.int_or("original_max_position_embeddings", 0));
  c.attention_bias = r.bool_or("attention_bias", false);
  c.hidden_act = r.opt_string("hidden_act").value_or("silu");
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", false);

  switch (c.family) {
    case ModelFamily::kLlama:
      break;
    case ModelFamily::kMistral:
      // MistralConfig's default window is 4096; v0.2+ configs write null (no window).
      if (root.contains("sliding_window")) {
        c.sliding_window = r.opt_int("sliding_window");
      } else {
        c.sliding_window = 4096;
      }
      break;
    case ModelFamily::kMixtral:
      c.sliding_window = r.opt_int("sliding_window");
      c.num_experts = r.req_int("num_local_experts");
      c.num_experts_per_token = r.int_or("num_experts_per_tok", 2);
      c.rope_theta = r.float_or("rope_theta", 1e6);
      break;
    case ModelFamily::kQwen2:
      c.attention_bias = true;  // Qwen2Attention: bias on q/k/v, none on o_proj
      if (r.bool_or("use_sliding_window", false)) c.sliding_window = r.opt_int("sliding_window");
      break;
    case ModelFamily::kPhi3:
      c.sliding_window = r.opt_int("sliding_window");
      break;
    case ModelFamily::kGemma2:
      c.tie_word_embeddings = r.bool_or("tie_word_embeddings", true);
      c.head_dim = r.int_or("head_dim", 256);
      c.rotary_dim = c.head_dim;
      c.hidden_act =
          r.opt_string("hidden_activation").value_or(r.opt_string("hidden_act").value_or("gelu_pytorch_tanh"));
      c.norm_plus_one = true;
      c.scale_embeddings = true;
      c.norm_placement = NormPlacement::kPreAndPost;
      c.sliding_window = r.int_or("sliding_window", 4096);
      c.sliding_window_pattern = 2;  // Gemma2Attention: layers with layer_idx % 2 == 0 slide
      c.attn_logit_softcapping = r.float_or("attn_logit_softcapping", 50.0);
      c.final_logit_softcapping = r.float_or("final_logit_softcapping", 30.0);
      c.query_pre_attn_scalar = r.float_or("query_pre_attn_scalar", 256.0);
      c.rms_norm_eps = r.float_or("rms_norm_eps", 1e-6);
      break;
    case ModelFamily::kOlmo2:
      c.qk_norm = true;
      c.norm_placement = NormPlacement::kPost;
      break;
  }
  if (c.hidden_act != "silu" && c.hidden_act != "gelu_pytorch_tanh" && c.hidden_act != "gelu") {
    r.fail("hidden_act", fmt::format("unsupported activation '{}'", c.hidden_act));
  }
  validate_model_config(c, source.string());
  return c;
}

ModelConfig read_hf_config(const std::filesystem::path& config_json) {
  return parse_hf_config(read_small_file(config_json, kMaxConfigBytes), config_json);
}

}  // namespace kvsafe::engine
