#pragma once
// The packed-storage kernel: quantize+pack and unpack+dequantize of independent groups.
// Torch-free so that the CUDA side (group_codec_cuda.cu) and the CPU reference
// (group_codec_cpu.cpp) share one declaration; kv_quant.h arranges tensors into groups.
//
// Layout: x is [n_groups, group_len] float32, row-major. Each group g owns
//   codes:  codes_bytes(p) bytes at codes + g * codes_bytes(p); element i's code occupies
//           bits [i*bits, (i+1)*bits) of that byte run, least significant bit first;
//   scale:  one fp16 (raw IEEE binary16 bits) or, with fp32_scales, one float, at index g
//           (none for fp8, whose scale is the per-tensor fp8_scale);
//   zero:   one entry like the scale for the asymmetric codecs (kIntAsym: the group
//           minimum; kQ4_1/kQ5_1: ggml's m), none otherwise.
// Codes are unsigned: kIntSym stores q + 2^(bits-1), kQ8_0 q + 128, kQ4_0/kQ5_0 as ggml.
//
// Formulas (math in float32, no FMA contraction):
//   kIntAsym (KIVI, quant/new_pack.py): s = (max-min)/(2^b-1), stored s' = half(s),
//     m' = half(min); q = clamp(round((x-m')/s'), 0, 2^b-1); x^ = q*s' + m'. s' == 0
//     (a constant group) -> q = 0, x^ = m' (KIVI itself has no guard and divides by 0).
//   kIntSym: s = max|x| / (2^(b-1)-1), s' = half(s); q = clamp(round(x/s'), -2^(b-1),
//     2^(b-1)-1); x^ = q*s'. round = half to even. fp16 scales saturate at 65504.
//   kFp8*: q = fp8(x / scale) saturating, RNE (vLLM scaled_convert); x^ = float(q) * scale.
//   kQ8_0/kQ4_0/kQ4_1/kQ5_0/kQ5_1: ggml-quants.c quantize_row_*_ref and dequantize_row_*
//     (group_len must be 32): d from the block's (signed) max or range, id = d ? 1/d : 0,
//     codes from x*id (or (x-min)*id) with ggml's truncating casts, d (and m) stored fp16.

#include <cstdint>

namespace kvsafe::kernels {

enum class Codec : std::uint8_t { kIntSym, kIntAsym, kFp8E4M3, kFp8E5M2, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1 };

struct CodecParams {
  Codec codec = Codec::kIntAsym;  // formula family
  int bits = 8;                   // code width 2..8 (fixed by the codec for fp8 and ggml types)
  int group_len = 0;              // elements per group (32 for the ggml types)
  std::int64_t n_groups = 0;      // number of groups
  bool fp32_scales = false;       // scales/zeros as float instead of fp16 (not for ggml types)
  float fp8_scale = 1.0f;         // per-tensor fp8 scale (> 0)
};

// Bits per code of a codec (fp8 and ggml fixed; int codecs p.bits).
int codec_bits(const CodecParams& p);
// Bytes of codes per group: ceil(group_len * bits / 8).
std::int64_t codes_bytes(const CodecParams& p);
// Bytes per scale entry (0: the codec has none), and per zero entry.
int scale_bytes(const CodecParams& p);
int zero_bytes(const CodecParams& p);
// Checks bits, group_len and codec-specific constraints; throws InputError.
void check_codec_params(const CodecParams& p);

// CPU reference. Inputs must be finite (kv_quant.h checks); pointers sized as above.
void quantize_pack_cpu(const float* x, const CodecParams& p, std::uint8_t* codes, void* scales, void* zeros);
void unpack_dequantize_cpu(const std::uint8_t* codes, const void* scales, const void* zeros, const CodecParams& p,
                           float* out);

// Same signature on device pointers (group_codec_cuda.cu). Present when kvsafe_kernels was
// built with CUDA (KVSAFE_HAVE_CUDA); synchronizes before returning; CUDA errors throw.
bool cuda_available();  // a device answers (false when built without CUDA)
void quantize_pack_cuda(const float* x, const CodecParams& p, std::uint8_t* codes, void* scales, void* zeros);
void unpack_dequantize_cuda(const std::uint8_t* codes, const void* scales, const void* zeros, const CodecParams& p,
                            float* out);

}  // namespace kvsafe::kernels
