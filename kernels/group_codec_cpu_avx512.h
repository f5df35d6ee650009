#pragma once
// AVX-512 paths of the CPU group codec (group_codec_cpu_avx512.cpp), private to kernels/.
// Bit for bit the per-group reference of group_codec_impl.h: the same float32 operations
// in the same order (true divisions, the magic-number round half to even, no FMA), only
// sixteen lanes at a time. Compiled for avx512f/bw/vl + bmi2 by function attribute (never
// by raising -march); callers run them only when common/cpu_kernels.h chose the AVX-512 copy, so the binary still
// runs on any x86-64.

#include <cstdint>

#include "kernels/group_codec.h"

namespace kvsafe::kernels::detail {

// Groups [begin, end) of quantize_pack_cpu / unpack_dequantize_cpu (same pointers, same
// layout as group_codec.h). Only for the codecs vector_paths_cover() (group_codec_cpu.cpp) names, on a
// CPU that runs that copy.
void quantize_groups_avx512(const float* x, const CodecParams& p, std::int64_t begin, std::int64_t end,
                            std::uint8_t* codes, void* scales, void* zeros);
void dequantize_groups_avx512(const std::uint8_t* codes, const void* scales, const void* zeros, const CodecParams& p,
                              std::int64_t begin, std::int64_t end, float* out);

}  // namespace kvsafe::kernels::detail
