// engine/cpu_gemm.h: the BLAS called directly, and split over ATen's pool.

#include "engine/cpu_gemm.h"

#include <dlfcn.h>

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

}  // namespace kvsafe::engine
