#pragma once
// The BLAS on the CPU: one sgemm on the calling thread (attention's prefill products,
// engine/attention_core_cpu.cpp), with one thread pool for the whole engine.
//
// NOTE: Debian's libtorch calls OpenBLAS, whose pthread build keeps its own pool of one
// thread per core beside ATen's OpenMP pool. On a decode step the two pools took turns on
// the same cores: OpenBLAS's idle threads spin in sched_yield while ATen's attention and
// elementwise loops run (about a fifth of a batch-32 SmolLM2 step on 2 cores went to that),
// and with several workers per node each worker's OpenBLAS started one thread per core
// whatever at::set_num_threads said. So the engine makes the BLAS single-threaded and splits
// its own products over ATen's pool (at::set_num_threads, engine/model.h LoadOptions::threads);
// the linear layers do not call the BLAS at all (engine/packed_gemm.h).

#include <cstdint>

namespace kvsafe::engine {

// Makes OpenBLAS (when it is the BLAS libtorch loaded) run every call on the calling thread.
// A no-op for other BLAS libraries. Safe to call more than once, from any thread.
void use_single_threaded_blas();

// The BLAS this process calls, e.g. "OpenBLAS 0.3.21 ... (Prescott kernels)" or "a BLAS
// without OpenBLAS's API (reference BLAS?)" (for logs and benchmark reports).
const char* blas_description();

// One BLAS sgemm on the calling thread, in row-major terms:
//   c[m, n] = alpha * a[m, k] @ b + beta * c,  b = [k, n] or, with transpose_b, [n, k]^T.
// Leading dimensions are row strides (lda >= k, ldb >= n or >= k transposed, ldc >= n).
// Throws InputError when a dimension does not fit the BLAS's 32-bit integers.
struct RowMajorGemm {
  std::int64_t m = 0, n = 0, k = 0;  // output rows, output columns, inner dimension
  bool transpose_b = false;          // b is stored [n, k]
  float alpha = 1.0f;                // scales the product
  float beta = 0.0f;                 // scales what c held; 0 ignores it (NaN included)
};
void sgemm_row_major(const RowMajorGemm& shape, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                     float* c, std::int64_t ldc);

}  // namespace kvsafe::engine
