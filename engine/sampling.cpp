// Temperature / top-p sampling and the default stop tokens (engine/generator.h). Plain C++ on
// one row of logits: no ATen here.

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "engine/generator.h"

namespace kvsafe::engine {

void apply_repetition_penalty(float* logits, std::int64_t vocab, std::span<const TokenId> seen, double penalty) {
  KVSAFE_CHECK(penalty > 0, "repetition_penalty must be > 0, got ", penalty);
  if (penalty == 1.0) return;
  std::vector<bool> done(static_cast<std::size_t>(vocab), false);
  for (const TokenId id : seen) {
    KVSAFE_CHECK(id >= 0 && id < vocab, "token ", id, " outside the vocabulary");
    // NOTE: once per id, as transformers' gather/scatter gives (a repeated id is not penalized twice).
    if (done[static_cast<std::size_t>(id)]) continue;
    done[static_cast<std::size_t>(id)] = true;
    float& v = logits[id];
    v = v < 0 ? static_cast<float>(v * penalty) : static_cast<float>(v / penalty);
  }
}

TokenId sample_token(const float* logits, std::int64_t vocab, double temperature, double top_p,
                     const std::function<double()>& next_uniform, std::int64_t top_k) {
  KVSAFE_CHECK(temperature > 0, "sampling needs temperature > 0, got ", temperature);
  KVSAFE_CHECK(top_p > 0 && top_p <= 1, "top_p must be in (0, 1], got ", top_p);
  KVSAFE_CHECK(top_k >= 0, "top_k must be >= 0, got ", top_k);
  const auto n = static_cast<std::size_t>(vocab);
  const double top = *std::max_element(logits, logits + n);
  std::vector<double> probs(n);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    probs[i] = std::exp((static_cast<double>(logits[i]) - top) / temperature);
    sum += probs[i];
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  // Highest probability first; ties by id so the order never depends on the sort.
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return probs[a] != probs[b] ? probs[a] > probs[b] : a < b; });
  // top_k first (transformers' order: temperature, top-k, top-p): every token whose probability
  // reaches the k-th largest stays (ties at the k-th are all kept, as `scores < topk[-1]` removes).
  std::size_t candidates = n;
  if (top_k > 0 && static_cast<std::size_t>(top_k) < n) {
    const double kth = probs[order[static_cast<std::size_t>(top_k) - 1]];
    candidates = static_cast<std::size_t>(top_k);
    while (candidates < n && probs[order[candidates]] >= kth) ++candidates;
    sum = 0;
    for (std::size_t i = 0; i < candidates; ++i) sum += probs[order[i]];
  }
  // The nucleus: the shortest prefix whose mass reaches top_p (at least one token).
  std::size_t keep = 0;
  double mass = 0;
  while (keep < candidates) {
    mass += probs[order[keep]] / sum;
    ++keep;
    if (mass >= top_p) break;
  }
  double kept = 0;
  for (std::size_t i = 0; i < keep; ++i) kept += probs[order[i]];
  const double draw = next_uniform() * kept;
  double acc = 0;
  for (std::size_t i = 0; i < keep; ++i) {
    acc += probs[order[i]];
    if (draw < acc) return static_cast<TokenId>(order[i]);
  }
  return static_cast<TokenId>(order[keep - 1]);
}

std::vector<TokenId> default_stop_tokens(const Tokenizer& tokenizer) {
  std::vector<TokenId> out;
  if (const auto eos = tokenizer.eos_id()) out.push_back(*eos);
  for (const char* text : {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>"}) {
    if (const auto id = tokenizer.token_id(text); id && tokenizer.is_special(*id)) out.push_back(*id);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace kvsafe::engine
