#pragma once
// Strided sliding-window perplexity, as Hugging Face's perplexity guide and the paper's
// core/metrics.py compute it (max_length 2048, stride 512 in the paper):
//
//   for begin in range(0, n, stride):
//       end = min(begin + max_length, n); target = end - prev_end   # only the new tokens
//       loss over input_ids[begin:end] with labels[:-target] = -100;  prev_end = end
//       if end == n: break
//
// Window i covers tokens [i * stride, min(i * stride + max_length, n)) and scores only the
// tokens no earlier window scored. A token is scored from the logits at the position before
// it, so a window's first token is never scored (window 0 scores max_length - 1 tokens).
// kvsafe keeps each window's NLL sum and token count, so the perplexity of any set of
// windows is exp(sum nll / sum tokens) (token-weighted; the paper's mean of per-window means
// differs from it only in the first and last windows' weights).
//
// The KV path is active while a window is scored: placement projection fake-quantizes every
// k_proj/v_proj output of the window's one forward call (what the paper measures);
// placement cache prefills the window through the quantizer's store, which changes the
// logits only when the spec's prefill_attention is `quantized` (with `exact`, as vLLM does,
// a single prefill never reads the quantized cache, so the ppl equals full precision).
//
// The text: eval::read_corpus_text (benchmark_registry.h), tokenized whole with the model's
// tokenizer, BOS added once at the start when the tokenizer adds one (as HF's
// tokenizer(text) does).

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "text/tokenizer.h"

namespace kvsafe::engine {
class Model;
class KvPath;
}  // namespace kvsafe::engine

namespace kvsafe::eval {

struct PerplexityWindow {
  std::int64_t index = 0;        // 0-based window number
  std::int64_t begin = 0;        // first input token of the window
  std::int64_t end = 0;          // one past its last input token
  std::int64_t score_begin = 0;  // tokens [score_begin, end) are scored
  std::int64_t scored() const { return end - score_begin; }
};

// Windows over `tokens` tokens: 0 when tokens < 2 (nothing to score) or max_length < 2 or
// stride < 1; 1 when tokens <= max_length; else ceil((tokens - max_length) / stride) + 1,
// capped at ceil(tokens / stride) as HF's range(0, n, stride) caps it (only matters when
// stride > max_length, which grids refuse). Equals orchestrator::perplexity_windows for
// every grid the parser accepts (tests/worker/shard_executor_test.cpp checks it).
std::int64_t perplexity_window_count(std::int64_t tokens, std::int64_t max_length, std::int64_t stride);

// Window `index` of the above. Throws InputError when index is outside [0, count).
PerplexityWindow perplexity_window(std::int64_t index, std::int64_t tokens, std::int64_t max_length,
                                   std::int64_t stride);

// The corpus as the model sees it: `text` tokenized whole (BOS as the tokenizer adds it by
// default; special-token text is not parsed).
std::vector<engine::TokenId> tokenize_corpus(const engine::Tokenizer& tokenizer, std::string_view text);

struct WindowNll {
  std::int64_t n_tokens = 0;  // tokens scored (window.scored())
  double nll_sum = 0;         // sum of -log p(token | earlier tokens of the window), nats
};

// Scores one window: one forward call of tokens[window.begin, window.end) (batch 1) through
// a fresh KvCache on `kv_path` (nullptr = full precision), all logits, NLLs summed in
// double. `tokens` is the whole corpus; window must lie inside it (InputError otherwise).
WindowNll score_window(const engine::Model& model, std::span<const engine::TokenId> tokens,
                       const PerplexityWindow& window, engine::KvPath* kv_path = nullptr);

// exp(nll_sum / n_tokens); NaN when n_tokens == 0.
double perplexity_of(double nll_sum, std::int64_t n_tokens);

}  // namespace kvsafe::eval
