#include "eval/perplexity.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "engine/kv_cache.h"
#include "engine/model.h"

namespace kvsafe::eval {

std::int64_t perplexity_window_count(std::int64_t tokens, std::int64_t max_length, std::int64_t stride) {
  if (tokens < 2 || max_length < 2 || stride < 1) return 0;
  if (tokens <= max_length) return 1;
  const std::int64_t count = (tokens - max_length + stride - 1) / stride + 1;
  // NOTE: HF's loop is range(0, n, stride): a window never starts at or past the end.
  return std::min(count, (tokens + stride - 1) / stride);
}

PerplexityWindow perplexity_window(std::int64_t index, std::int64_t tokens, std::int64_t max_length,
                                   std::int64_t stride) {
  const std::int64_t count = perplexity_window_count(tokens, max_length, stride);
  KVSAFE_CHECK(index >= 0 && index < count, "perplexity window ", index, " does not exist: ", tokens,
               " tokens at max_length ", max_length, " and stride ", stride, " give ", count, " windows");
  PerplexityWindow w;
  w.index = index;
  w.begin = index * stride;
  w.end = std::min(w.begin + max_length, tokens);
  const std::int64_t prev_end = index == 0 ? 0 : std::min((index - 1) * stride + max_length, tokens);
  // The window's first token has no logits before it inside the window: never scored.
  w.score_begin = std::max(w.begin + 1, prev_end);
  return w;
}

std::vector<engine::TokenId> tokenize_corpus(const engine::Tokenizer& tokenizer, std::string_view text) {
  return tokenizer.encode(text, engine::EncodeOptions{.add_eos = false, .parse_special = false});
}

WindowNll score_window(const engine::Model& model, std::span<const engine::TokenId> tokens,
                       const PerplexityWindow& window, engine::KvPath* kv_path) {
  const auto n = static_cast<std::int64_t>(tokens.size());
  KVSAFE_CHECK(window.begin >= 0 && window.begin < window.end && window.end <= n && window.score_begin > window.begin &&
                   window.score_begin <= window.end,
               "perplexity window ", window.index, " [", window.begin, ", ", window.end, ") scoring from ",
               window.score_begin, " does not fit a corpus of ", n, " tokens");
  const std::int64_t len = window.end - window.begin;
  std::vector<std::int64_t> ids(tokens.begin() + window.begin, tokens.begin() + window.end);
  const at::Tensor input = at::from_blob(ids.data(), {1, len}, at::TensorOptions().dtype(at::kLong)).clone();

  engine::KvCache cache(model, /*batch=*/1, kv_path);
  at::Tensor logits = model.forward(input, at::Tensor(), cache, {.logits = engine::LogitsMode::kAll});
  // [1, len, vocab] -> the rows that predict the scored tokens: positions score_begin-1 .. end-2.
  const std::int64_t first = window.score_begin - window.begin - 1;
  const std::int64_t count = window.end - window.score_begin;
  at::Tensor rows = logits.select(0, 0).narrow(0, first, count).to(at::kFloat).contiguous();  // [count, vocab]
  const at::Tensor lse = at::logsumexp(rows, /*dim=*/1);                                      // [count]
  const at::Tensor targets = input.select(0, 0).narrow(0, first + 1, count).to(rows.device());
  const at::Tensor picked = rows.gather(1, targets.unsqueeze(1)).squeeze(1);  // [count]
  const at::Tensor nll = (lse - picked).to(at::kDouble).cpu().contiguous();
  const double* values = nll.data_ptr<double>();
  WindowNll out;
  out.n_tokens = count;
  for (std::int64_t i = 0; i < count; ++i) out.nll_sum += values[i];
  return out;
}

double perplexity_of(double nll_sum, std::int64_t n_tokens) {
  if (n_tokens <= 0) return std::numeric_limits<double>::quiet_NaN();
  return std::exp(nll_sum / static_cast<double>(n_tokens));
}

}  // namespace kvsafe::eval
