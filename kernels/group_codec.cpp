// Storage sizes and parameter checks of the group codec (group_codec.h); shared by the
// CPU and CUDA paths.

#include "kernels/group_codec.h"
#include "common/error.h"
#include "kernels/group_codec_impl.h"

namespace kvsafe::kernels {

int codec_bits(const CodecParams& p) {
  return detail::code_bits(p);
}

std::int64_t codes_bytes(const CodecParams& p) {
  return (static_cast<std::int64_t>(p.group_len) * codec_bits(p) + 7) / 8;
}

int scale_bytes(const CodecParams& p) {
  switch (p.codec) {
    case Codec::kFp8E4M3:
    case Codec::kFp8E5M2:
      return 0;
    case Codec::kIntSym:
    case Codec::kIntAsym:
      return p.fp32_scales ? 4 : 2;
    default:
      return 2;  // ggml: fp16 d
  }
}

int zero_bytes(const CodecParams& p) {
  switch (p.codec) {
    case Codec::kIntAsym:
      return p.fp32_scales ? 4 : 2;
    case Codec::kQ4_1:
    case Codec::kQ5_1:
      return 2;
    default:
      return 0;
  }
}

void check_codec_params(const CodecParams& p) {
  KVSAFE_CHECK(p.group_len >= 1, "group length must be >= 1, got ", p.group_len);
  KVSAFE_CHECK(p.n_groups >= 0, "group count must be >= 0, got ", p.n_groups);
  const bool is_int = p.codec == Codec::kIntSym || p.codec == Codec::kIntAsym;
  if (is_int) KVSAFE_CHECK(p.bits >= 2 && p.bits <= 8, "integer codes need bits 2..8, got ", p.bits);
  const bool ggml = !is_int && p.codec != Codec::kFp8E4M3 && p.codec != Codec::kFp8E5M2;
  if (ggml) {
    KVSAFE_CHECK(p.group_len == 32, "llama.cpp cache types use blocks of 32 elements, got a group of ", p.group_len,
                 " (head_dim must be a multiple of 32)");
    KVSAFE_CHECK(!p.fp32_scales, "llama.cpp cache types store fp16 scales; fp32_scales does not apply");
  }
  if (!is_int && !ggml) {
    KVSAFE_CHECK(p.fp8_scale > 0.0f && p.fp8_scale < 3.0e38f, "fp8 scale must be finite and > 0, got ", p.fp8_scale);
  }
}

}  // namespace kvsafe::kernels
