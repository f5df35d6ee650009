// CPU reference of the group codec (group_codec.h): one group at a time, groups in
// parallel over ATen's thread pool. The per-group arithmetic is group_codec_impl.h, the
// same code the CUDA kernels run. When common/cpu_kernels.h chose the AVX-512 or AVX2 copy,
// the integer and fp8 codecs run group_codec_cpu_avx512.cpp or group_codec_cpu_avx2.cpp
// instead: the same operations sixteen or eight lanes at a time, equal bit for bit
// (tests/kernels/codec_test.cpp checks each against the per-group code here).

#include <ATen/Parallel.h>

#include <algorithm>

#include "common/cpu_kernels.h"
#include "common/error.h"

#include "kernels/group_codec.h"
#include "kernels/group_codec_cpu_avx2.h"
#include "kernels/group_codec_cpu_avx512.h"
#include "kernels/group_codec_impl.h"

namespace kvsafe::kernels {
namespace {
// Groups per parallel task: enough work per task that scheduling stays negligible.
constexpr std::int64_t kGrainElements = 1 << 15;

std::int64_t grain(const CodecParams& p) {
  return std::max<std::int64_t>(1, kGrainElements / std::max(1, p.group_len));
}

// The vector path of the chosen copy of the CPU kernels (common/cpu_kernels.h): the AVX-512
// groups for the avx512 copy on a CPU that has the extensions they use besides avx512f, the
// AVX2 groups for the avx2 copy (or an avx512 one without those extensions), and the per-group
// reference for the generic copy and the codecs no vector path covers.
enum class CodecPath { kReference, kAvx2, kAvx512 };

// The codecs both vector paths cover: the integer ones (any bits, any group length) and fp8.
// The llama.cpp block types stay on the reference.
bool vector_paths_cover(const CodecParams& p) {
  switch (p.codec) {
    case Codec::kIntSym:
    case Codec::kIntAsym:
    case Codec::kFp8E4M3:
    case Codec::kFp8E5M2:
      return true;
    default:
      return false;
  }
}

CodecPath codec_path(const CodecParams& p) {
  if (!vector_paths_cover(p)) return CodecPath::kReference;
  switch (active_cpu_kernels()) {
    case CpuKernels::kAvx512:
      return CodecPath::kAvx512;
    case CpuKernels::kAvx2:
      return CodecPath::kAvx2;
    case CpuKernels::kGeneric:
      break;
  }
  return CodecPath::kReference;
}
}  // namespace

void quantize_pack_cpu(const float* x, const CodecParams& p, std::uint8_t* codes, void* scales, void* zeros) {
  check_codec_params(p);
  const std::int64_t cb = codes_bytes(p);
  const CodecPath path = codec_path(p);
  at::parallel_for(0, p.n_groups, grain(p), [&](std::int64_t begin, std::int64_t end) {
    if (path == CodecPath::kAvx512) return detail::quantize_groups_avx512(x, p, begin, end, codes, scales, zeros);
    if (path == CodecPath::kAvx2) return detail::quantize_groups_avx2(x, p, begin, end, codes, scales, zeros);
    for (std::int64_t g = begin; g < end; ++g) {
      detail::quantize_group(x + g * p.group_len, p, g, codes + g * cb, scales, zeros, static_cast<int>(cb));
    }
  });
}

void unpack_dequantize_cpu(const std::uint8_t* codes, const void* scales, const void* zeros, const CodecParams& p,
                           float* out) {
  check_codec_params(p);
  const std::int64_t cb = codes_bytes(p);
  const CodecPath path = codec_path(p);
  at::parallel_for(0, p.n_groups, grain(p), [&](std::int64_t begin, std::int64_t end) {
    if (path == CodecPath::kAvx512) return detail::dequantize_groups_avx512(codes, scales, zeros, p, begin, end, out);
    if (path == CodecPath::kAvx2) return detail::dequantize_groups_avx2(codes, scales, zeros, p, begin, end, out);
    for (std::int64_t g = begin; g < end; ++g) {
      detail::dequantize_group(codes + g * cb, scales, zeros, p, g, out + g * p.group_len);
    }
  });
}

#if !defined(KVSAFE_HAVE_CUDA)
// Built without CUDA: the device entry points exist and refuse.
bool cuda_available() {
  return false;
}
void quantize_pack_cuda(const float*, const CodecParams&, std::uint8_t*, void*, void*) {
  throw InputError("kvsafe was built without CUDA: quantize_pack_cuda is unavailable");
}
void unpack_dequantize_cuda(const std::uint8_t*, const void*, const void*, const CodecParams&, float*) {
  throw InputError("kvsafe was built without CUDA: unpack_dequantize_cuda is unavailable");
}
#endif

}  // namespace kvsafe::kernels
