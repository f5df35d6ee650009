// greedy_tokens (engine/greedy.h): the argmax of each row of float32 CPU logits, rows split
// over ATen's pool, two vector passes per row (the maximum, then its first index).
// NOTE: why not at::argmax. It runs on one thread over the whole [batch, vocab] logits while
// the pool's other threads wait: a few percent of a batch-32 decode step (engine/README.md,
// "Measured").

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <limits>

#include "common/error.h"
#include "engine/greedy.h"
#include "engine/lanes16.h"

namespace kvsafe::engine {
namespace {

using lanes::load;

// at::argmax of one row: the first index of the maximum; a NaN counts as above everything
// (the first NaN wins).
template <typename L>
[[gnu::always_inline]] inline std::int64_t row_argmax(const float* x, std::int64_t n) {
  using F = typename L::F;
  const std::int64_t vectors = n / 16 * 16;
  F best = F::splat(-std::numeric_limits<float>::infinity());
  auto nan = best != best;  // no lane yet
  for (std::int64_t i = 0; i < vectors; i += 16) {
    const F v = load<F>(x + i);
    nan |= v != v;
    best = lanes::select(v > best, v, best);
  }
  float top = lanes::lane_max(best);
  bool any_nan = lanes::any(nan);
  for (std::int64_t i = vectors; i < n; ++i) {
    any_nan = any_nan || x[i] != x[i];
    top = x[i] > top ? x[i] : top;
  }
  if (any_nan) {
    for (std::int64_t i = 0; i < n; ++i) {
      if (x[i] != x[i]) return i;
    }
  }
  for (std::int64_t i = 0; i < vectors; i += 16) {
    const auto hit = load<F>(x + i) == top;
    if (!lanes::any(hit)) continue;
    for (int lane = 0; lane < 16; ++lane) {
      if (hit[lane] != 0) return i + lane;
    }
  }
  for (std::int64_t i = vectors; i < n; ++i) {
    if (x[i] == top) return i;
  }
  return 0;  // not reached: top is one of the row's values
}

using RowsFn = void (*)(const float* x, std::int64_t n, std::int64_t begin, std::int64_t end, std::int64_t* out);

// One copy per instruction set.
void rows_generic(const float* x, std::int64_t n, std::int64_t begin, std::int64_t end, std::int64_t* out) {
  for (std::int64_t r = begin; r < end; ++r) out[r] = row_argmax<lanes::GenericLanes>(x + r * n, n);
}
KVSAFE_TARGET_AVX512 void rows_avx512(const float* x, std::int64_t n, std::int64_t begin, std::int64_t end,
                                      std::int64_t* out) {
  for (std::int64_t r = begin; r < end; ++r) out[r] = row_argmax<lanes::Avx512Lanes>(x + r * n, n);
}
KVSAFE_TARGET_AVX2 void rows_avx2(const float* x, std::int64_t n, std::int64_t begin, std::int64_t end,
                                  std::int64_t* out) {
  for (std::int64_t r = begin; r < end; ++r) out[r] = row_argmax<lanes::Avx2Lanes>(x + r * n, n);
}

}  // namespace

at::Tensor greedy_tokens(const at::Tensor& logits) {
  KVSAFE_CHECK(logits.dim() >= 1 && logits.size(-1) > 0, "greedy_tokens: logits need a non-empty last dimension");
  if (!logits.device().is_cpu() || logits.scalar_type() != at::kFloat) return logits.argmax(-1);
  const at::Tensor rows = logits.contiguous();
  const std::int64_t n = rows.size(-1), count = rows.numel() / n;
  std::vector<std::int64_t> shape(rows.sizes().begin(), rows.sizes().end() - 1);
  at::Tensor out = at::empty(shape, rows.options().dtype(at::kLong));
  const RowsFn fn = lanes::pick_copy<RowsFn>({.avx512 = &rows_avx512, .avx2 = &rows_avx2, .generic = &rows_generic});
  const float* x = rows.data_ptr<float>();
  std::int64_t* ids = out.data_ptr<std::int64_t>();
  // About 16K floats a task: a row of a large vocabulary, or several short ones.
  const std::int64_t grain = std::max<std::int64_t>(1, (std::int64_t{1} << 14) / n);
  at::parallel_for(0, count, grain, [&](std::int64_t begin, std::int64_t end) { fn(x, n, begin, end, ids); });
  return out;
}

}  // namespace kvsafe::engine
