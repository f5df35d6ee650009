// attention_core_cpu (engine/attention_core.h): float32 attention on the CPU, one task
// per (sequence, kv head, block of query rows) over ATen's pool.
//
// Decode steps (a few query rows per kv head) run vector loops over the cache, one task at a
// time: per key, its dot products with every query row of the GQA group; the softmax of the
// task's rows (its own vector exp); per value row, one multiply-add for each of a few query
// rows, into accumulators that stay in registers. Longer calls (prefill, perplexity windows) run two single-threaded
// BLAS calls per task (engine/cpu_gemm.h) with ATen's softmax between them, over the whole score tensor, as in
// attention_core_reference.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "common/error.h"
#include "engine/attention_core.h"
#include "engine/cpu_gemm.h"
#include "engine/lanes16.h"

namespace kvsafe::engine {
namespace {

using lanes::lane_max;
using lanes::lane_sum;
using lanes::load;
using lanes::select;

// Query rows per task on the BLAS path: enough rows for an efficient product, enough tasks
// to balance a single sequence's kv heads over the pool.
constexpr std::int64_t kBlasRowBlock = 128;

// The raw operands of one (sequence, kv head): rows [row_begin, row_end) of its queries.
struct Task {
  const float* q;       // [rows, dim] dense: row g * n + i is group member g, token i
  const float* keys;    // [total, dim], rows key_stride apart
  const float* values;  // [total, dim], rows value_stride apart
  const bool* allowed;  // [n, total]: query token i may see key t
  float* scores;        // [rows, total] dense
  float* out;           // [rows, dim] dense
  std::int64_t key_stride, value_stride;
  std::int64_t n, total, dim;
  std::int64_t row_begin, row_end;
};

// Softmax over each of a task's score rows, in place. The row's tail past a multiple of 16
// goes through a padded copy (padding -inf: probability 0, nothing added to the sum).
template <typename L>
[[gnu::always_inline]] inline void softmax_rows(const Task& t) {
  using F = typename L::F;
  const float minus_inf = -std::numeric_limits<float>::infinity();
  const std::int64_t full = t.total / 16 * 16;
  for (std::int64_t r = t.row_begin; r < t.row_end; ++r) {
    float* s = t.scores + r * t.total;
    alignas(64) float tail[16];
    std::fill(tail, tail + 16, minus_inf);
    std::copy(s + full, s + t.total, tail);
    F m = load<F>(tail);
    for (std::int64_t i = 0; i < full; i += 16) {
      const F v = load<F>(s + i);
      m = select(v > m, v, m);
    }
    const float row_max = lane_max(m);
    F sum = F::zero();
    for (std::int64_t i = 0; i < full; i += 16) {
      const F e = lanes::exp16<L>(load<F>(s + i) - row_max);
      lanes::store(s + i, e);
      sum += e;
    }
    const F e_tail = lanes::exp16<L>(load<F>(tail) - row_max);
    sum += e_tail;
    const float inverse = 1.0f / lane_sum(sum);
    for (std::int64_t i = 0; i < full; i += 16) {
      lanes::store(s + i, load<F>(s + i) * inverse);
    }
    lanes::store(tail, e_tail);
    for (std::int64_t i = full; i < t.total; ++i) s[i] = tail[i - full] * inverse;
  }
}

// NOTE: a decode step reads the whole cache once (SmolLM2 batch 32: ~100 MB of keys and as much
// of values), each (sequence, kv head) a stream of a few hundred rows, too short for the
// hardware prefetcher to ramp up: the loads waited on memory (attention was a quarter of a
// batch-32 step). So the rows ahead are requested early, up to the task's last row (a pointer
// past the cache's allocation would be undefined behaviour even though a prefetch never
// faults): the scores loop asks for its keys into L1 and the same rows of values into L2, so
// both streams are in flight at once and the values pass reads them from L2; the next task's
// first rows are asked for before this one starts (prefetch_task_start). Two threads then read
// a cold cache at 27-29 GB/s instead of ~20 (the machine's two-thread read rate is ~28).
constexpr std::int64_t kScoresPrefetchRows = 8, kValuesPrefetchRows = 16;

enum class Locality : int { kL2 = 2, kL1 = 3 };

template <int kChunks, Locality kWhere = Locality::kL1>
[[gnu::always_inline]] inline void prefetch_row(const float* row) {
#pragma GCC unroll 16
  for (int c = 0; c < kChunks; ++c) __builtin_prefetch(row + 16 * c, 0, static_cast<int>(kWhere));
}

// The first rows of a task's keys and values, asked for while the previous task runs.
inline void prefetch_task_start(const Task& t) {
  const std::int64_t rows = std::min(kScoresPrefetchRows, t.total);
  for (std::int64_t key = 0; key < rows; ++key) {
    for (std::int64_t d = 0; d < t.dim; d += 16) {
      __builtin_prefetch(t.keys + key * t.key_stride + d, 0, static_cast<int>(Locality::kL1));
      __builtin_prefetch(t.values + key * t.value_stride + d, 0, static_cast<int>(Locality::kL2));
    }
  }
}

// Scores of a decode task, head_dim = 16 * kChunks: each key row is loaded once for all
// the task's query rows. With `mask`, a key the row may not see scores -inf here (what
// cap_and_mask would write without soft-capping), saving a pass over the scores.
template <typename L, int kChunks>
[[gnu::always_inline]] inline void decode_scores_body(const Task& t, float scale, bool mask) {
  using F = typename L::F;
  const float minus_inf = -std::numeric_limits<float>::infinity();
  for (std::int64_t key = 0; key < t.total; ++key) {
    const float* k = t.keys + key * t.key_stride;
    const std::int64_t ahead = std::min(key + kScoresPrefetchRows, t.total - 1);
    prefetch_row<kChunks>(t.keys + ahead * t.key_stride);
    prefetch_row<kChunks, Locality::kL2>(t.values + ahead * t.value_stride);
    F kv[kChunks];
#pragma GCC unroll 16
    for (int c = 0; c < kChunks; ++c) kv[c] = load<F>(k + 16 * c);
    for (std::int64_t r = t.row_begin; r < t.row_end; ++r) {
      const float* q = t.q + r * t.dim;
      // NOTE: the sum starts at 0, not at the first product: with two products in one sum
      // GCC may fuse either into an FMA (and it fused different ones in the AVX2 and AVX-512
      // copies), or fuse a lone product into lane_sum's first add; from 0 every FMA has one
      // product, and the copies agree bit for bit.
      F acc = F::zero();
#pragma GCC unroll 16
      for (int c = 0; c < kChunks; ++c) acc += kv[c] * load<F>(q + 16 * c);
      const float score = lane_sum(acc) * scale;
      t.scores[r * t.total + key] = !mask || t.allowed[(r % t.n) * t.total + key] ? score : minus_inf;
    }
  }
}

// Query rows whose value accumulators share one pass over the values: their registers
// (kRows * kChunks * the lane set's registers per 16 lanes) stay within three quarters of the
// copy's (AVX-512: 32, AVX2 and SSE2: 16), leaving room for the value row; else one row per
// pass, or the accumulators would live on the stack.
template <typename L, int kChunks>
constexpr int kValueRowsPerPass = std::max(1, (L::kWidth == 16 ? 24 : 8) / (kChunks * (16 / L::kWidth)));

// Output rows of a decode task: the softmax of its (capped, masked) score rows in place, then
// the values, each value row loaded once for up to kRows query rows whose accumulators stay
// in registers over the whole cache; a key with probability 0 (masked) adds nothing to that
// row (the sum is the one a pass per row would give, bit for bit).
template <typename L, int kChunks>
[[gnu::always_inline]] inline void decode_values_body(const Task& t) {
  using F = typename L::F;
  constexpr int kRows = kValueRowsPerPass<L, kChunks>;
  softmax_rows<L>(t);
  for (std::int64_t first = t.row_begin; first < t.row_end; first += kRows) {
    const int rows = static_cast<int>(std::min<std::int64_t>(kRows, t.row_end - first));
    const float* p = t.scores + first * t.total;
    F acc[kRows][kChunks];
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < kChunks; ++c) acc[r][c] = F::zero();
    }
    for (std::int64_t key = 0; key < t.total; ++key) {
      const float* v = t.values + key * t.value_stride;
      prefetch_row<kChunks>(t.values + std::min(key + kValuesPrefetchRows, t.total - 1) * t.value_stride);
      F vv[kChunks];
#pragma GCC unroll 16
      for (int c = 0; c < kChunks; ++c) vv[c] = load<F>(v + 16 * c);
#pragma GCC unroll 16
      for (int r = 0; r < kRows; ++r) {
        const float weight = r < rows ? p[r * t.total + key] : 0.0f;
        if (weight == 0.0f) continue;
#pragma GCC unroll 16
        for (int c = 0; c < kChunks; ++c) acc[r][c] += weight * vv[c];
      }
    }
    for (int r = 0; r < rows; ++r) {
#pragma GCC unroll 16
      for (int c = 0; c < kChunks; ++c) lanes::store(t.out + (first + r) * t.dim + 16 * c, acc[r][c]);
    }
  }
}

// One copy of the decode loops per instruction set: the same bodies for each target.
template <int kChunks>
void decode_scores_generic(const Task& t, float scale, bool mask) {
  decode_scores_body<lanes::GenericLanes, kChunks>(t, scale, mask);
}
template <int kChunks>
void decode_values_generic(const Task& t) {
  decode_values_body<lanes::GenericLanes, kChunks>(t);
}
template <int kChunks>
KVSAFE_TARGET_AVX512 void decode_scores_avx512(const Task& t, float scale, bool mask) {
  decode_scores_body<lanes::Avx512Lanes, kChunks>(t, scale, mask);
}
template <int kChunks>
KVSAFE_TARGET_AVX512 void decode_values_avx512(const Task& t) {
  decode_values_body<lanes::Avx512Lanes, kChunks>(t);
}
template <int kChunks>
KVSAFE_TARGET_AVX2 void decode_scores_avx2(const Task& t, float scale, bool mask) {
  decode_scores_body<lanes::Avx2Lanes, kChunks>(t, scale, mask);
}
template <int kChunks>
KVSAFE_TARGET_AVX2 void decode_values_avx2(const Task& t) {
  decode_values_body<lanes::Avx2Lanes, kChunks>(t);
}

using ScoresKernel = void (*)(const Task&, float, bool);
using ValuesKernel = void (*)(const Task&);
struct DecodeKernels {
  ScoresKernel scores;
  ValuesKernel values;
};

constexpr int kMaxChunks = 16;  // head_dim up to 256 (Gemma-2)
using KernelTable = std::array<DecodeKernels, kMaxChunks>;

template <std::size_t... I>
constexpr KernelTable generic_kernels(std::index_sequence<I...>) {
  return {DecodeKernels{&decode_scores_generic<I + 1>, &decode_values_generic<I + 1>}...};
}
template <std::size_t... I>
constexpr KernelTable avx512_kernels(std::index_sequence<I...>) {
  return {DecodeKernels{&decode_scores_avx512<I + 1>, &decode_values_avx512<I + 1>}...};
}
template <std::size_t... I>
constexpr KernelTable avx2_kernels(std::index_sequence<I...>) {
  return {DecodeKernels{&decode_scores_avx2<I + 1>, &decode_values_avx2<I + 1>}...};
}

// The vector kernels for head_dim in the chosen copy, or nullptr members when it is not a
// multiple of 16 up to 256 (then the scalar loops below run).
DecodeKernels decode_kernels(std::int64_t dim) {
  if (dim % 16 != 0 || dim / 16 < 1 || dim / 16 > kMaxChunks) return {nullptr, nullptr};
  const auto index = static_cast<std::size_t>(dim / 16 - 1);
  static constexpr KernelTable kGeneric = generic_kernels(std::make_index_sequence<kMaxChunks>{});
  static constexpr KernelTable kAvx512 = avx512_kernels(std::make_index_sequence<kMaxChunks>{});
  static constexpr KernelTable kAvx2 = avx2_kernels(std::make_index_sequence<kMaxChunks>{});
  return lanes::pick_copy<const KernelTable*>({.avx512 = &kAvx512, .avx2 = &kAvx2, .generic = &kGeneric})->at(index);
}

// Scalar loops for any head_dim (stories260K has 8).
void decode_scores_scalar(const Task& t, float scale) {
  for (std::int64_t r = t.row_begin; r < t.row_end; ++r) {
    const float* q = t.q + r * t.dim;
    for (std::int64_t key = 0; key < t.total; ++key) {
      const float* k = t.keys + key * t.key_stride;
      float acc = 0.0f;
      for (std::int64_t d = 0; d < t.dim; ++d) acc += q[d] * k[d];
      t.scores[r * t.total + key] = acc * scale;
    }
  }
}
void decode_values_scalar(const Task& t) {
  softmax_rows<lanes::GenericLanes>(t);
  for (std::int64_t r = t.row_begin; r < t.row_end; ++r) {
    const float* p = t.scores + r * t.total;
    float* o = t.out + r * t.dim;
    std::fill(o, o + t.dim, 0.0f);
    for (std::int64_t key = 0; key < t.total; ++key) {
      if (p[key] == 0.0f) continue;
      const float* v = t.values + key * t.value_stride;
      for (std::int64_t d = 0; d < t.dim; ++d) o[d] += p[key] * v[d];
    }
  }
}

// Soft-capping and the mask, on a task's score rows.
void cap_and_mask(const Task& t, float softcap) {
  const float minus_inf = -std::numeric_limits<float>::infinity();
  for (std::int64_t r = t.row_begin; r < t.row_end; ++r) {
    float* s = t.scores + r * t.total;
    const bool* allowed = t.allowed + (r % t.n) * t.total;
    if (softcap > 0) {
      for (std::int64_t key = 0; key < t.total; ++key) s[key] = std::tanh(s[key] / softcap) * softcap;
    }
    for (std::int64_t key = 0; key < t.total; ++key) s[key] = allowed[key] ? s[key] : minus_inf;
  }
}

}  // namespace

at::Tensor attention_core_cpu(const at::Tensor& q, const at::Tensor& keys_in, const at::Tensor& values_in,
                              const at::Tensor& allowed_in, double scale, double softcap) {
  const std::int64_t batch = q.size(0), heads = q.size(1), n = q.size(2), dim = q.size(3);
  const std::int64_t kv_heads = keys_in.size(1), group = heads / kv_heads, total = keys_in.size(2);
  const std::int64_t rows = group * n;  // query rows per kv head: row g * n + i is head g, slot i
  KVSAFE_ASSERT(q.scalar_type() == at::kFloat && keys_in.scalar_type() == at::kFloat &&
                values_in.scalar_type() == at::kFloat && q.device().is_cpu());
  // NOTE: the caches are narrow() views of a larger buffer: only the last dim must be dense.
  const at::Tensor qg = q.reshape({batch, kv_heads, rows, dim}).contiguous();
  const at::Tensor keys = keys_in.stride(3) == 1 ? keys_in : keys_in.contiguous();
  const at::Tensor values = values_in.stride(3) == 1 ? values_in : values_in.contiguous();
  const at::Tensor allowed = allowed_in.to(at::kBool).expand({batch, 1, n, total}).contiguous();
  at::Tensor scores = at::empty({batch, kv_heads, rows, total}, q.options());
  at::Tensor out = at::empty({batch, kv_heads, rows, dim}, q.options());

  const bool decode = n <= kDecodeAttentionMaxTokens;
  const DecodeKernels vector = decode ? decode_kernels(dim) : DecodeKernels{nullptr, nullptr};
  const std::int64_t row_block = decode ? rows : kBlasRowBlock;
  const std::int64_t blocks = (rows + row_block - 1) / row_block;
  const float* qd = qg.data_ptr<float>();
  const float* kd = keys.data_ptr<float>();
  const float* vd = values.data_ptr<float>();
  const bool* ad = allowed.data_ptr<bool>();
  float* sd = scores.data_ptr<float>();
  float* od = out.data_ptr<float>();
  const std::int64_t ks0 = keys.stride(0), ks1 = keys.stride(1), ks2 = keys.stride(2);
  const std::int64_t vs0 = values.stride(0), vs1 = values.stride(1), vs2 = values.stride(2);
  const auto task = [&](std::int64_t index) {
    const std::int64_t item = index / blocks, block = index % blocks;
    const std::int64_t b = item / kv_heads, h = item % kv_heads;
    return Task{.q = qd + item * rows * dim,
                .keys = kd + b * ks0 + h * ks1,
                .values = vd + b * vs0 + h * vs1,
                .allowed = ad + b * n * total,
                .scores = sd + item * rows * total,
                .out = od + item * rows * dim,
                .key_stride = ks2,
                .value_stride = vs2,
                .n = n,
                .total = total,
                .dim = dim,
                .row_begin = block * row_block,
                .row_end = std::min(rows, (block + 1) * row_block)};
  };
  const auto fscale = static_cast<float>(scale), fcap = static_cast<float>(softcap);
  const std::int64_t tasks = batch * kv_heads * blocks;
  // A grain keeps tiny calls on the calling thread.
  const std::int64_t grain = std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(1, row_block * total));
  if (decode) {
    // NOTE: one region per call: scores, softmax and values of a task run back to back while
    // its score rows are in L1 (a region per stage cost two more barriers per layer and an
    // ATen softmax on the calling thread).
    at::parallel_for(0, tasks, grain, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t index = begin; index < end; ++index) {
        const Task t = task(index);
        if (vector.scores != nullptr) {
          vector.scores(t, fscale, /*mask=*/!(fcap > 0));  // a NaN cap is no cap, as in cap_and_mask
          if (index + 1 < end) prefetch_task_start(task(index + 1));
          if (fcap > 0) cap_and_mask(t, fcap);
        } else {
          decode_scores_scalar(t, fscale);
          cap_and_mask(t, fcap);
        }
        if (vector.values != nullptr) {
          vector.values(t);
        } else {
          decode_values_scalar(t);
        }
      }
    });
    return out.view({batch, heads, n, dim});
  }
  at::parallel_for(0, tasks, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t index = begin; index < end; ++index) {
      const Task t = task(index);
      sgemm_row_major({.m = t.row_end - t.row_begin, .n = total, .k = dim, .transpose_b = true, .alpha = fscale},
                      t.q + t.row_begin * dim, dim, t.keys, t.key_stride, t.scores + t.row_begin * total, total);
      cap_and_mask(t, fcap);
    }
  });
  const at::Tensor probs = at::softmax(scores, -1, at::kFloat);  // as the reference: ATen's softmax
  const float* pd = probs.data_ptr<float>();
  at::parallel_for(0, tasks, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t index = begin; index < end; ++index) {
      const Task t = task(index);
      sgemm_row_major({.m = t.row_end - t.row_begin, .n = dim, .k = total}, pd + (t.scores - sd) + t.row_begin * total,
                      total, t.values, t.value_stride, t.out + t.row_begin * dim, dim);
    }
  });
  return out.view({batch, heads, n, dim});
}

}  // namespace kvsafe::engine
