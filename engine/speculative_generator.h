#pragma once
// SpeculativeGenerator: greedy speculative decoding (Leviathan et al. 2023, "Fast Inference
// from Transformers via Speculative Decoding"; Chen et al. 2023, "Accelerating Large Language
// Model Decoding with Speculative Sampling"), for the paper's question whether a quantized KV
// cache flips refusals when answers are drafted (issue 22, table specdecode_flip).
//
// A draft model (any model with the target's vocabulary; a model may draft for itself)
// proposes draft_tokens = k tokens greedily, one forward call each on its own cache; the
// target verifies them in one forward call over k + 1 positions (the last accepted token and
// the proposals) on its cache, keeps the longest prefix of proposals equal to its own argmax,
// then appends its own token: the correction at the first mismatch, or the bonus token after
// all k. Both caches are rolled back to the accepted tokens (KvCache::truncate). Each of the
// target's tokens is thus its own greedy choice given the accepted prefix, whatever the draft
// proposes: the draft and its KV path change only the speed (the acceptance rate).
//
// Greedy only (temperature 0; other temperatures throw InputError): greedy takes the first
// maximal logit, as Generator does (engine/greedy.h). Batch size 1: prompts are generated one
// at a time, without padding. Stop tokens and max_new_tokens end a sequence exactly as in
// Generator (the stop token is not kept; it counts toward max_new_tokens).
//
// When the answer is Generator's (same target, same KV path, batch_size 1), bit for bit:
// when the target's logits for a position are the same bits in a (k + 1)-token verify call as
// in a one-token decode step, and its KV path gives each slot the same stored value whatever
// the calls around it. On float32 CPU every product, norm and RoPE row is computed alike in
// any call (engine/packed_gemm.h), and attention runs the same per-row decode loops for calls
// of at most kDecodeAttentionMaxTokens (4) query tokens (engine/attention_core.h): with
// draft_tokens <= 3 the logits are Generator's bits. Larger k sends the verify's attention to
// the BLAS products, equal only to rounding: tokens can differ where two logits are within
// rounding of each other. KV paths that store each slot independently: none, exact, per-token
// (or channel-grouped per token) quantization in either placement, cache placement without a
// residual window. Not so: projection placement with statistics over the call (per-tensor,
// per-channel: the verify call's statistics span its k + 1 tokens, rejected ones included),
// and cache placement with a residual window or token-grouped keys (KIVI, per-channel: the
// verify's earlier positions read the store after the whole call was appended, when slots
// may have left the exact window that a one-token step would still read exactly).
// tests/engine/speculative_generator_test.cpp checks each case.
//
//   SpeculativeGenerator spec(target, draft);
//   SpeculativeOutput out = spec.generate(prompts, {.max_new_tokens = 64, .draft_tokens = 4,
//                                                   .stop_tokens = default_stop_tokens(tok),
//                                                   .target_kv_path = int4.get()});
//   out.generations[i]  // as Generator::generate; out.stats[i].acceptance_rate()

#include <cstdint>
#include <vector>

#include "engine/generator.h"

namespace kvsafe::engine {

class Model;
class KvPath;

struct SpeculativeOptions {
  std::int64_t max_new_tokens = 256;   // most tokens generated per prompt (a stop token counts)
  std::int64_t draft_tokens = 4;       // k: the draft's proposals per round, >= 1
  double temperature = 0.0;            // must be 0: greedy only
  std::vector<TokenId> stop_tokens{};  // generation of one of these ends a sequence (default_stop_tokens)
  TokenId pad_id = 0;                  // checked to be in the vocabulary as Generator does; batch 1 never pads
  KvPath* target_kv_path = nullptr;    // the target's KV path; nullptr = full precision
  KvPath* draft_kv_path = nullptr;     // the draft's KV path; nullptr = full precision
  // Optional: the target's prefill logits that choose each prompt's first token, as
  // GenerationOptions::on_first_logits (float32 CPU, valid during the call only).
  FirstLogitsCallback on_first_logits{};
};

// One prompt's rounds. Counted as verified, before a stop token or max_new_tokens cut the
// round's tokens: a round's proposals are capped at the tokens still allowed minus one (the
// target adds one), so the last round may propose fewer than k, or none.
struct SpeculativeStats {
  std::int64_t rounds = 0;    // target verify calls after the prefill
  std::int64_t proposed = 0;  // draft tokens proposed in all rounds
  std::int64_t accepted = 0;  // proposals equal to the target's choice (the accepted prefixes)
  // accepted / proposed; 0 when nothing was proposed.
  double acceptance_rate() const {
    return proposed > 0 ? static_cast<double>(accepted) / static_cast<double>(proposed) : 0.0;
  }
};

struct SpeculativeOutput {
  std::vector<Generation> generations{};  // one per prompt, in input order, as Generator::generate
  std::vector<SpeculativeStats> stats{};  // one per prompt, in input order
};

class SpeculativeGenerator {
 public:
  // Both models must outlive the generator. Throws InputError when their vocabulary sizes
  // differ (the draft's ids are the target's).
  SpeculativeGenerator(const Model& target, const Model& draft);

  // One Generation per prompt, in input order; `on_token` sees every kept token as in
  // Generator. Throws InputError, before generating anything, for an empty prompt, ids outside
  // the vocabulary, temperature != 0, draft_tokens < 1, max_new_tokens < 0, pad_id outside the
  // vocabulary; and from KvCache::truncate for a KV path whose stores cannot truncate.
  SpeculativeOutput generate(const std::vector<std::vector<TokenId>>& prompts, const SpeculativeOptions& options,
                             const TokenCallback& on_token = {}) const;

 private:
  const Model& target_;
  const Model& draft_;
};

}  // namespace kvsafe::engine
