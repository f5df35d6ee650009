#pragma once
// ModelConfig: the shape and the numerics of a decoder-only transformer, in one struct that
// both readers fill (GGUF metadata: modelfile/weights_loader.cpp; HF config.json:
// modelfile/hf_config.h), so the engine never cares where the weights came from.
//
// Conventions, whatever the source:
//  - Tensors come from WeightsLoader under HF names of the family ("model.layers.3.self_attn
//    .q_proj.weight"), fused checkpoints split (Phi-3 qkv_proj -> q/k/v_proj, gate_up_proj ->
//    gate/up_proj; GGUF stacked experts -> one tensor per expert), row-major [out, in].
//  - Q/K rows are in the HF rotate_half order (GGUF llama files are un-permuted at load), so
//    RoPE always rotates dimension i with i + rotary_dim/2 inside a head.
//  - RMSNorm weights are the multiplier itself: for Gemma-2 checkpoints that store w for
//    y = x̂ * (1 + w), WeightsLoader returns 1 + w (GGUF Gemma files already store 1 + w);
//    norm_plus_one records that the family works this way.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kvsafe::engine {

// The transformer families of the paper; DeepSeek-LLM-7B and Yi load as kLlama.
enum class ModelFamily {
  kLlama,    // Llama-2/3/3.1, SmolLM2, DeepSeek-7B, Yi (HF model_type "llama")
  kMistral,  // Mistral-7B (sliding window on older versions)
  kMixtral,  // Mixtral MoE
  kQwen2,    // Qwen2/2.5: bias on q/k/v
  kPhi3,     // Phi-3/3.5: fused qkv/gate_up in the checkpoint, longrope
  kGemma2,   // Gemma-2: soft-capping, pre+post norms, alternating sliding window
  kOlmo2,    // OLMo-2: post-norms only, RMSNorm on the full q and k projections
};

// "llama", "mistral", ... (the HF model_type spelling).
std::string to_string(ModelFamily family);

// Where the norms sit in a decoder layer.
enum class NormPlacement {
  kPre,         // x + attn(norm(x)); x + mlp(norm(x))                       (Llama, Qwen2, ...)
  kPreAndPost,  // x + post_norm(attn(pre_norm(x))); same for the MLP         (Gemma-2)
  kPost,        // x + post_norm(attn(x)); x + post_norm(mlp(x))              (OLMo-2)
};

// RoPE frequency scaling (HF config rope_scaling / GGUF rope.scaling.*).
struct RopeScaling {
  // kFreqFactors: per-pair divisors of the base frequencies, as GGUF files store them
  // (tensor rope_freqs.weight; llama.cpp's form of Llama-3.1's "llama3" scaling).
  enum class Type { kNone, kLinear, kDynamic, kLlama3, kLongRope, kYarn, kFreqFactors };
  Type type = Type::kNone;
  double factor = 1.0;                                // linear/dynamic/llama3/yarn factor
  double low_freq_factor = 1.0;                       // llama3
  double high_freq_factor = 4.0;                      // llama3
  std::int64_t original_max_position_embeddings = 0;  // llama3, longrope, yarn (0 = unset)
  std::vector<double> short_factor{};                 // longrope/su: per rotary pair, <= original length
  std::vector<double> long_factor{};                  // longrope/su: per rotary pair, beyond it
  std::optional<double> attention_factor{};           // longrope/yarn: magnitude scaling, when given
  std::vector<double> freq_factors{};                 // kFreqFactors: one per rotary pair
  bool operator==(const RopeScaling&) const = default;
};

struct ModelConfig {
  ModelFamily family = ModelFamily::kLlama;  // layer layout and numerics family
  std::string architecture{};                // as written by the source ("llama", "LlamaForCausalLM")
  std::int64_t vocab_size = 0;               // rows of the embedding / lm_head
  std::int64_t hidden_size = 0;              // residual stream width
  std::int64_t intermediate_size = 0;        // MLP (per expert for MoE) width
  std::int64_t num_layers = 0;               // decoder layers
  std::int64_t num_heads = 0;                // query heads
  std::int64_t num_kv_heads = 0;             // key/value heads (GQA when < num_heads)
  std::int64_t head_dim = 0;                 // per-head width (hidden_size / num_heads unless given)
  std::int64_t rotary_dim = 0;               // leading dims of a head that RoPE rotates (= head_dim)
  std::int64_t max_position_embeddings = 0;  // trained context length
  double rms_norm_eps = 1e-5;                // RMSNorm epsilon
  double rope_theta = 10000.0;               // RoPE base frequency
  RopeScaling rope_scaling{};                // context extension
  bool tie_word_embeddings = false;          // lm_head shares model.embed_tokens.weight
  bool attention_bias = false;               // q/k/v projections have biases (Qwen2)
  bool norm_plus_one = false;                // family norms are x̂ * (1 + w); loaded norm tensors already hold 1 + w
  bool scale_embeddings = false;             // multiply embeddings by sqrt(hidden_size) (Gemma)
  NormPlacement norm_placement = NormPlacement::kPre;  // where the layer norms sit
  bool qk_norm = false;                                // RMSNorm on q and k projections (OLMo-2: over all heads)
  std::string hidden_act = "silu";                     // MLP gate activation: "silu" or "gelu_pytorch_tanh"
  std::optional<std::int64_t> sliding_window{};        // attention window in tokens, if any
  std::int64_t sliding_window_pattern = 1;             // window on layers where layer % pattern == 0 (Gemma-2: 2)
  double attn_logit_softcapping = 0.0;                 // tanh cap on attention scores; 0 = off (Gemma-2: 50)
  double final_logit_softcapping = 0.0;                // tanh cap on output logits; 0 = off (Gemma-2: 30)
  double query_pre_attn_scalar = 0.0;                  // scores scaled by 1/sqrt(this); 0 = use head_dim
  std::int64_t num_experts = 0;                        // MoE experts per layer; 0 = dense
  std::int64_t num_experts_per_token = 0;              // MoE top-k
  bool operator==(const ModelConfig&) const = default;
};

// Throws ModelFileError naming `source` and the offending field when the numbers are
// inconsistent (non-positive sizes, heads not dividing, kv heads not dividing heads, ...).
void validate_model_config(const ModelConfig& config, const std::string& source);

}  // namespace kvsafe::engine
