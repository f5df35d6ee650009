#pragma once
// AVX2 paths of the CPU group codec (group_codec_cpu_avx2.cpp), private to kernels/: the
// AVX-512 paths' counterpart for CPUs without AVX-512 (most AMD servers before Zen 4), eight
// lanes at a time. Bit for bit the per-group reference of group_codec_impl.h, like the
// AVX-512 paths: the same float32 operations in the same order (true divisions, the
// magic-number round half to even, no FMA). Compiled for avx2 + f16c by function attribute;
// callers run them only when common/cpu_kernels.h chose the AVX2 copy.

#include <cstdint>

#include "kernels/group_codec.h"

namespace kvsafe::kernels::detail {

// Groups [begin, end) of quantize_pack_cpu / unpack_dequantize_cpu (same pointers, same
// layout as group_codec.h). Only for the codecs vector_paths_cover() (group_codec_cpu.cpp) names, on a
// CPU that runs that copy.
void quantize_groups_avx2(const float* x, const CodecParams& p, std::int64_t begin, std::int64_t end,
                          std::uint8_t* codes, void* scales, void* zeros);
void dequantize_groups_avx2(const std::uint8_t* codes, const void* scales, const void* zeros, const CodecParams& p,
                            std::int64_t begin, std::int64_t end, float* out);

}  // namespace kvsafe::kernels::detail
