// CUDA group codec (group_codec.h): one thread per group running the same per-group code
// as the CPU reference (group_codec_impl.h), so results agree bit for bit. Built only when
// KVSAFE_HAVE_CUDA (kernels/CMakeLists.txt), with -fmad=false (no contraction).
// NOTE: thread-per-group is the correctness baseline; a warp-per-group layout with
// coalesced loads is the performance follow-up (fused dequant-in-attention is later).

#include <cuda_runtime.h>

#include <string>

#include "common/error.h"
#include "kernels/group_codec.h"
#include "kernels/group_codec_impl.h"

// Every CUDA API call goes through this check (STYLE.md): the expression and file:line.
#define KVSAFE_CUDA_CHECK(expr)                                                                                        \
  do {                                                                                                                 \
    const cudaError_t kvsafe_cuda_status = (expr);                                                                     \
    if (kvsafe_cuda_status != cudaSuccess) {                                                                           \
      throw ::kvsafe::InternalError(std::string("CUDA error at ") + __FILE__ + ":" + std::to_string(__LINE__) + ": " + \
                                    #expr + ": " + cudaGetErrorString(kvsafe_cuda_status));                            \
    }                                                                                                                  \
  } while (false)

namespace kvsafe::kernels {
namespace {

constexpr int kThreads = 128;

__global__ void quantize_kernel(const float* x, CodecParams p, std::uint8_t* codes, void* scales, void* zeros,
                                int cbytes) {
  const std::int64_t g = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= p.n_groups) return;
  detail::quantize_group(x + g * p.group_len, p, g, codes + g * cbytes, scales, zeros, cbytes);
}

__global__ void dequantize_kernel(const std::uint8_t* codes, const void* scales, const void* zeros, CodecParams p,
                                  float* out, int cbytes) {
  const std::int64_t g = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= p.n_groups) return;
  detail::dequantize_group(codes + g * cbytes, scales, zeros, p, g, out + g * p.group_len);
}

unsigned blocks_for(std::int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

}  // namespace

bool cuda_available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" error
    return false;
  }
  return count > 0;
}

void quantize_pack_cuda(const float* x, const CodecParams& p, std::uint8_t* codes, void* scales, void* zeros) {
  check_codec_params(p);
  if (p.n_groups == 0) return;
  const int cb = static_cast<int>(codes_bytes(p));
  quantize_kernel<<<blocks_for(p.n_groups), kThreads>>>(x, p, codes, scales, zeros, cb);
  KVSAFE_CUDA_CHECK(cudaGetLastError());
  KVSAFE_CUDA_CHECK(cudaDeviceSynchronize());
}

void unpack_dequantize_cuda(const std::uint8_t* codes, const void* scales, const void* zeros, const CodecParams& p,
                            float* out) {
  check_codec_params(p);
  if (p.n_groups == 0) return;
  const int cb = static_cast<int>(codes_bytes(p));
  dequantize_kernel<<<blocks_for(p.n_groups), kThreads>>>(codes, scales, zeros, p, out, cb);
  KVSAFE_CUDA_CHECK(cudaGetLastError());
  KVSAFE_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace kvsafe::kernels
