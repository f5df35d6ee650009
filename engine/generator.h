#pragma once
// Generator: batched generation over a Model (DESIGN.md engine::Generator). Prompts are cut
// into batches of GenerationOptions::batch_size, left-padded, prefilled at once, then decoded
// one token per step for every sequence of the batch (the paper: greedy, batch 4, left
// padding, 256 new tokens). A sequence stops at one of its stop tokens or max_new_tokens;
// until the whole batch stops it is fed pad_id as a real token, exactly as transformers'
// generate() does (this matters to the paper's batch-wide quantization statistics).
//
// Deterministic: the same model, prompts and options give the same tokens. Greedy takes the
// first maximal logit. Sampling (temperature > 0) draws from a generator seeded with
// (seed, prompt index), so a prompt's tokens do not depend on which batch it lands in; only
// float noise between batch shapes can change them (tests/engine/forward_smollm2_test.cpp
// reports how often it does).

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/padding_queries.h"
#include "text/tokenizer.h"

namespace kvsafe::engine {

class Model;
class KvPath;

// Called once per prompt with the next-token logits (vocab floats, float32 on the CPU) that
// choose its first generated token: what first-token divergence metrics (KL against full
// precision, changed first tokens) are computed from. The pointer is valid during the call only.
using FirstLogitsCallback = std::function<void(std::size_t prompt, const float* logits, std::int64_t vocab)>;

struct GenerationOptions {
  std::int64_t max_new_tokens = 256;  // most tokens generated per prompt (a stop token counts)
  std::int64_t batch_size = 4;        // prompts per forward batch
  double temperature = 0.0;           // 0 = greedy; > 0 = sample from softmax(logits / temperature)
  double top_p = 1.0;                 // nucleus: smallest set of tokens with probability >= top_p
  std::int64_t top_k = 0;             // sampling: keep the k most probable first; 0 = all
  // transformers' repetition penalty, greedy or sampled (generation_config.json: Qwen2.5 1.05);
  // 1.0 = none. It sees the prompt as fed (padding included) and the generated tokens.
  double repetition_penalty = 1.0;
  std::uint64_t seed = 0;              // sampling seed (per prompt: seed and prompt index)
  std::vector<TokenId> stop_tokens{};  // generation of one of these ends a sequence (default_stop_tokens)
  TokenId pad_id = 0;                  // left padding, and what a stopped sequence is fed
  // What a left-padding slot's attention gives (engine/model.h); kZero is the paper's.
  PaddingQueries padding_queries = PaddingQueries::kAttendAll;
  KvPath* kv_path = nullptr;              // the quantizer's KV path; nullptr = full precision
  FirstLogitsCallback on_first_logits{};  // optional; costs one device-to-host copy per batch
};

struct Generation {
  std::vector<TokenId> tokens{};  // generated tokens, the stop token excluded
  bool stopped = false;           // ended on a stop token (false: max_new_tokens)
  TokenId stop_token = -1;        // the stop token, when stopped
};

// Called for every generated token that is kept (not the stop token), in order per prompt:
// the prompt's index in the input and the token.
using TokenCallback = std::function<void(std::size_t prompt, TokenId token)>;

class Generator {
 public:
  // `model` must outlive the generator.
  explicit Generator(const Model& model) : model_(model) {}

  // One Generation per prompt, in input order. Throws InputError for an empty prompt, ids
  // outside the vocabulary, or options out of range.
  std::vector<Generation> generate(const std::vector<std::vector<TokenId>>& prompts, const GenerationOptions& options,
                                   const TokenCallback& on_token = {}) const;

 private:
  const Model& model_;
};

// EOS plus the end-of-turn tokens of the chat formats that the tokenizer knows
// (<|im_end|>, <|eot_id|>, <|end|>, <end_of_turn>, <|endoftext|>, </s>), sorted, unique: what the
// models' generation_config.json lists as eos_token_id.
std::vector<TokenId> default_stop_tokens(const Tokenizer& tokenizer);

// The token sampled from `logits` (vocab floats) at `temperature` > 0, keeping the `top_k`
// most probable tokens (0 = all; ties at the k-th kept) and then the nucleus `top_p` of those,
// with uniform draws from `next_uniform` (values in [0, 1)). Greedy callers use greedy_tokens
// (engine/model.h).
TokenId sample_token(const float* logits, std::int64_t vocab, double temperature, double top_p,
                     const std::function<double()>& next_uniform, std::int64_t top_k = 0);

// transformers' RepetitionPenaltyLogitsProcessor on one row: every distinct id of `seen` (the
// prompt as fed, left padding included, and the tokens generated so far) has its logit divided
// by `penalty` when positive, multiplied when negative. 1.0 changes nothing.
void apply_repetition_penalty(float* logits, std::int64_t vocab, std::span<const TokenId> seen, double penalty);

}  // namespace kvsafe::engine
