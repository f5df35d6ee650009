#pragma once
// How a cache-placement side is cut into codec groups, shared by pack_cache
// (kv_quant_cache.cpp) and the incremental KvCacheQuantizer (kv_cache_quantizer.cpp), so
// both always agree. Private to kernels/. Window rules in kv_quant.h (pack_cache).

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "kernels/kv_quant.h"

namespace kvsafe::kernels::detail {

// Keys grouped along tokens (per_channel in the cache, KIVI keys).
inline bool token_grouped(const KvSideSpec& side) {
  return side.granularity == Granularity::kPerChannel &&
         (side.scheme == KvScheme::kInt || side.scheme == KvScheme::kKivi);
}

// Cache per_channel groups tokens in blocks of group_size (KIVI's G; 32 when unset).
inline int token_group(const KvSideSpec& side) {
  return side.group_size > 0 ? side.group_size : 32;
}

// Token-grouped sides flush whole windows of F = (R > 0 ? R : G) valid tokens.
inline std::int64_t token_flush(const KvSideSpec& side) {
  return side.residual > 0 ? side.residual : token_group(side);
}

// Elements per group for the token-wise sides, over `dq` quantized channels.
inline int row_group_len(const KvSideSpec& side, std::int64_t dq) {
  if (is_llama_cpp(side.scheme)) return 32;
  if (side.scheme == KvScheme::kKivi || side.granularity == Granularity::kPerGroup) {
    return side.group_size > 0 ? side.group_size : 32;
  }
  return static_cast<int>(dq);  // per_token and fp8: one row
}

// The channels a side quantizes (quantize_channels, minus explicit outliers), ascending.
inline std::vector<int> quantized_channels(const KvSideSpec& side, std::int64_t d) {
  KVSAFE_CHECK(side.outliers.explicit_list || side.outliers.count == 0, "outlier_channels ", side.outliers.count,
               " needs calibration first: pass the channels from top_k_channels() as an explicit list");
  std::vector<int> out;
  for (int c = 0; c < d; ++c) {
    const bool listed = std::binary_search(side.quantize_channels.begin(), side.quantize_channels.end(), c);
    const bool outlier = std::binary_search(side.outliers.channels.begin(), side.outliers.channels.end(), c);
    if ((side.quantize_channels.empty() || listed) && !outlier) out.push_back(c);
  }
  for (int c : side.quantize_channels) KVSAFE_CHECK(c < d, "channel ", c, " does not exist (head_dim ", d, ")");
  return out;
}

// Codec parameters of a quantizing side over `dq` quantized channels of head_dim `d`
// (n_groups left 0). Throws InputError when groups do not tile the channels or an fp8
// calibrated side comes without its scale.
inline CodecParams cache_codec_params(const KvSideSpec& side, std::int64_t dq, std::int64_t d, float fp8_scale) {
  CodecParams p;
  p.codec = codec_for(side);
  p.bits = side.bits;
  p.fp32_scales = side.fp32_scales;
  if (is_fp8(side.scheme)) {
    KVSAFE_CHECK(fp8_scale > 0.0f || side.fp8_scale == Fp8ScaleSource::kUnit,
                 "fp8_scale calibrated: pass the frozen scale (fp8_calibrated_scale) in CacheQuantOptions");
    p.fp8_scale = fp8_scale > 0.0f ? fp8_scale : 1.0f;
  }
  p.group_len = token_grouped(side) ? token_group(side) : row_group_len(side, dq);
  KVSAFE_CHECK(token_grouped(side) || (dq > 0 && dq % p.group_len == 0), "groups of ", p.group_len, " do not tile the ",
               dq, " quantized channels of a head (head_dim ", d, ")");
  return p;
}

}  // namespace kvsafe::kernels::detail
