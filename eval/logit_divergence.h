#pragma once
// Divergence between two next-token distributions given as raw logits: what the worker
// records per prompt at the first generated token (db::GenerationRow::first_token_kl,
// first_token_id vs reference_first_token_id). Torch-free: plain float arrays, so report/
// and tools can use it too.

#include <cstdint>

namespace kvsafe::eval {

// KL(P || Q) in nats, P = softmax(p_logits), Q = softmax(q_logits), over all `vocab` entries:
// sum_i P_i (log P_i - log Q_i), with both log-softmaxes and the sum in double (max-subtracted,
// so no logit range overflows). Terms with P_i == 0 contribute 0. `p_logits` is the reference
// (full precision), `q_logits` the approximation (the quantized run), as KL(full || quantized)
// in the literature on KV-cache quantization (e.g. KIVI's and KVQuant's logit KLD).
// NOTE: rounding can leave a sum of about -1e-17 when the two distributions are (nearly)
// identical; the result is clamped to >= 0, the value KL takes. +inf when Q gives a zero
// probability (a -inf logit) to a token P gives mass to. Throws InputError when vocab < 1 or a
// pointer is null, when a logit is NaN or +inf, and when every logit is -inf.
double kl_divergence_logits(const float* p_logits, const float* q_logits, std::int64_t vocab);

// The index of the first maximal logit (what greedy decoding picks). Throws InputError when
// vocab < 1 or the pointer is null.
std::int64_t argmax_logits(const float* logits, std::int64_t vocab);

}  // namespace kvsafe::eval
