// KL divergence and argmax over next-token logits (logit_divergence.h).

#include "eval/logit_divergence.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"

namespace kvsafe::eval {

namespace {

void check_logits(const float* logits, std::int64_t vocab, const char* which) {
  KVSAFE_CHECK(logits != nullptr, which, " logits are null");
  KVSAFE_CHECK(vocab >= 1, "vocab must be >= 1, got ", vocab);
  for (std::int64_t i = 0; i < vocab; ++i) {
    const float x = logits[i];
    KVSAFE_CHECK(!std::isnan(x) && x != std::numeric_limits<float>::infinity(), which, " logit ", i, " is ", x);
  }
}

// log softmax(logits) in double: x - max - log(sum exp(x - max)).
std::vector<double> log_softmax(const float* logits, std::int64_t vocab) {
  const double max = *std::max_element(logits, logits + vocab);
  KVSAFE_CHECK(std::isfinite(max), "every logit is -inf: no distribution");
  double sum = 0;
  for (std::int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  const double shift = max + std::log(sum);
  std::vector<double> out(static_cast<std::size_t>(vocab));
  for (std::int64_t i = 0; i < vocab; ++i) out[static_cast<std::size_t>(i)] = static_cast<double>(logits[i]) - shift;
  return out;
}

}  // namespace

double kl_divergence_logits(const float* p_logits, const float* q_logits, std::int64_t vocab) {
  check_logits(p_logits, vocab, "reference");
  check_logits(q_logits, vocab, "approximation");
  const std::vector<double> log_p = log_softmax(p_logits, vocab);
  const std::vector<double> log_q = log_softmax(q_logits, vocab);
  double kl = 0;
  for (std::size_t i = 0; i < log_p.size(); ++i) {
    const double p = std::exp(log_p[i]);
    if (p == 0) continue;  // 0 * log(0 / q) = 0, also where q is 0
    kl += p * (log_p[i] - log_q[i]);
  }
  return std::max(kl, 0.0);
}

std::int64_t argmax_logits(const float* logits, std::int64_t vocab) {
  KVSAFE_CHECK(logits != nullptr, "logits are null");
  KVSAFE_CHECK(vocab >= 1, "vocab must be >= 1, got ", vocab);
  return std::max_element(logits, logits + vocab) - logits;  // the first maximal element
}

}  // namespace kvsafe::eval
