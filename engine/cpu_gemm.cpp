// engine/cpu_gemm.h: the BLAS called directly, and split over ATen's pool.

#include "engine/cpu_gemm.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>

#include "common/error.h"

// The Fortran BLAS symbol every BLAS exports (libtorch itself calls it).
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc);

namespace kvsafe::engine {
namespace {

// Below this many multiply-adds a call is not worth waking the pool for.
constexpr std::int64_t kSplitMinWork = std::int64_t{1} << 18;
// Column chunks are multiples of this (OpenBLAS's widest sgemm micro-tile).
constexpr std::int64_t kColumnAlign = 16;

template <typename Function>
Function* find_symbol(const char* name) {
  void* symbol = dlsym(RTLD_DEFAULT, name);
  if (symbol == nullptr) return nullptr;
  Function* function = nullptr;
  std::memcpy(&function, &symbol, sizeof(symbol));  // NOTE: object -> function pointer
  return function;
}

int blas_int(std::int64_t value, const char* what) {
  KVSAFE_CHECK(value >= 0 && value <= std::numeric_limits<int>::max(), "sgemm: ", what, " = ", value,
               " does not fit the BLAS's 32-bit integers");
  return static_cast<int>(value);
}

}  // namespace

void use_single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (auto* set_threads = find_symbol<void(int)>("openblas_set_num_threads")) set_threads(1);
  });
}

const char* blas_description() {
  static const std::string description = [] {
    auto* config = find_symbol<char*()>("openblas_get_config");
    auto* core = find_symbol<char*()>("openblas_get_corename");
    // NOTE: openblas_get_config() already starts with "OpenBLAS <version>". sgemm_ itself is
    // always there (the engine links it), so any other library is "not OpenBLAS".
    if (config == nullptr) return std::string("a BLAS without OpenBLAS's API (reference BLAS?)");
    return std::string(config()) + (core != nullptr ? std::string(" (") + core() + " kernels)" : "");
  }();
  return description.c_str();
}

void sgemm_row_major(const RowMajorGemm& shape, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                     float* c, std::int64_t ldc) {
  if (shape.m == 0 || shape.n == 0) return;
  // NOTE: row-major C = A op(B) is column-major C^T = op(B)^T A^T: the BLAS sees the
  // operands swapped and each row-major matrix as its column-major transpose.
  const int m = blas_int(shape.n, "n"), n = blas_int(shape.m, "m"), k = blas_int(shape.k, "k");
  const int ld_b = blas_int(ldb, "ldb"), ld_a = blas_int(lda, "lda"), ld_c = blas_int(ldc, "ldc");
  const char trans_b = shape.transpose_b ? 'T' : 'N', trans_a = 'N';
  sgemm_(&trans_b, &trans_a, &m, &n, &k, &shape.alpha, b, &ld_b, a, &ld_a, &shape.beta, c, &ld_c);
}

void matmul_split_columns(const float* x, std::int64_t m, std::int64_t k, std::span<const ColumnProduct> products) {
  // Columns [begin, end) of the products laid end to end.
  const auto columns = [&](std::int64_t begin, std::int64_t end) {
    std::int64_t offset = 0;
    for (const ColumnProduct& p : products) {
      const std::int64_t first = std::max(begin, offset) - offset, last = std::min(end, offset + p.n) - offset;
      offset += p.n;
      if (first >= last) continue;
      if (p.bias != nullptr) {
        for (std::int64_t row = 0; row < m; ++row) std::copy(p.bias + first, p.bias + last, p.out + row * p.n + first);
      }
      sgemm_row_major({.m = m, .n = last - first, .k = k, .beta = p.bias != nullptr ? 1.0f : 0.0f}, x, k, p.w + first,
                      p.n, p.out + first, p.n);
    }
  };
  std::int64_t n = 0;
  for (const ColumnProduct& p : products) n += p.n;
  const std::int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  if (threads <= 1 || m * n * k < kSplitMinWork || n < 2 * kColumnAlign) {
    columns(0, n);
    return;
  }
  const std::int64_t chunk = ((n + threads - 1) / threads + kColumnAlign - 1) / kColumnAlign * kColumnAlign;
  const std::int64_t chunks = (n + chunk - 1) / chunk;
  at::parallel_for(0, chunks, 1, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t c = first; c < last; ++c) columns(c * chunk, std::min(n, (c + 1) * chunk));
  });
}

}  // namespace kvsafe::engine
