// Serving mode (placement cache): groups per sequence and KV head, padding excluded,
// packed storage through the group codec. Window rules in kv_quant.h (pack_cache).

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "kernels/kv_quant.h"
#include "kernels/kv_quant_cache_layout.h"

namespace kvsafe::kernels {
using detail::cache_codec_params;
using detail::quantized_channels;
using detail::token_flush;
using detail::token_grouped;

std::int64_t PackedKv::memory_bytes() const {
  return codes.numel() + scales.numel() + zeros.numel() + 2 * valid_exact_elements;
}

PackedKv pack_cache(const at::Tensor& x, const at::Tensor& valid, const KvSideSpec& side,
                    const CacheQuantOptions& options) {
  KVSAFE_CHECK(x.dim() == 4, "cache tensors are [batch, heads, tokens, head_dim]; got ", x.dim(), " dims");
  KVSAFE_CHECK(x.is_floating_point(), "cache tensor must be floating point");
  check_finite(x, "cache input");
  const std::int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3);
  at::Tensor mask = valid.defined() ? valid.to(at::kBool).contiguous() : at::ones({B, T}, at::kBool);
  KVSAFE_CHECK(mask.dim() == 2 && mask.size(0) == B && mask.size(1) == T, "valid mask must be [batch, tokens] = [", B,
               ", ", T, "]");
  PackedKv out;
  out.shape = {B, H, T, D};
  out.dtype = x.scalar_type();
  const bool quantize = side.scheme != KvScheme::kNone;
  const std::vector<int> channels = quantize ? quantized_channels(side, D) : std::vector<int>{};
  const std::int64_t dq = static_cast<std::int64_t>(channels.size());
  CodecParams p;
  if (quantize) p = cache_codec_params(side, dq, D, options.fp8_scale);
  const bool* m = mask.data_ptr<bool>();
  std::vector<std::int64_t> groups;  // flat offsets, group_len per group
  std::vector<char> is_quantized(static_cast<std::size_t>(x.numel()), 0);
  std::int64_t valid_tokens = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    std::vector<std::int64_t> tokens;  // valid token positions in order
    for (std::int64_t t = 0; t < T; ++t) {
      if (m[b * T + t]) tokens.push_back(t);
    }
    valid_tokens += static_cast<std::int64_t>(tokens.size());
    if (!quantize || dq == 0) continue;
    const auto n = static_cast<std::int64_t>(tokens.size());
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t base = (b * H + h) * T * D;
      if (token_grouped(side)) {
        const std::int64_t G = p.group_len, F = token_flush(side);
        const std::int64_t nq = n / F * F;
        for (std::int64_t t0 = 0; t0 < nq; t0 += G) {
          for (int c : channels) {
            for (std::int64_t i = 0; i < G; ++i) groups.push_back(base + tokens[t0 + i] * D + c);
          }
        }
      } else {
        const std::int64_t nq = std::max<std::int64_t>(0, n - side.residual);
        for (std::int64_t i = 0; i < nq; ++i) {
          for (int c : channels) groups.push_back(base + tokens[i] * D + c);
        }
      }
    }
  }
  for (std::int64_t off : groups) is_quantized[static_cast<std::size_t>(off)] = 1;
  const at::Tensor flat = x.contiguous().view({-1});
  p.n_groups = quantize && p.group_len > 0 ? static_cast<std::int64_t>(groups.size()) / p.group_len : 0;
  out.params = p;
  out.group_index = at::tensor(groups, at::kLong).view({p.n_groups, std::max(1, p.group_len)});
  if (p.n_groups > 0) {
    const at::Tensor xs = flat.index_select(0, out.group_index.view({-1})).to(at::kFloat).contiguous();
    out.codes = at::zeros({p.n_groups, codes_bytes(p)}, at::kByte);
    out.scales = at::zeros({p.n_groups * scale_bytes(p)}, at::kByte);
    out.zeros = at::zeros({p.n_groups * zero_bytes(p)}, at::kByte);
    quantize_pack_cpu(xs.data_ptr<float>(), p, out.codes.data_ptr<std::uint8_t>(), out.scales.data_ptr(),
                      out.zeros.data_ptr());
  } else {
    out.codes = at::zeros({0}, at::kByte);
    out.scales = at::zeros({0}, at::kByte);
    out.zeros = at::zeros({0}, at::kByte);
  }
  std::vector<std::int64_t> exact;
  std::int64_t valid_exact = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    if (is_quantized[static_cast<std::size_t>(i)]) continue;
    exact.push_back(i);
    const std::int64_t b = i / (H * T * D), t = (i / D) % T;
    if (m[b * T + t]) ++valid_exact;
  }
  out.exact_index = at::tensor(exact, at::kLong);
  out.exact_values = flat.index_select(0, out.exact_index).clone();
  out.valid_exact_elements = valid_exact;
  out.valid_tokens = valid_tokens;
  return out;
}

at::Tensor unpack_cache(const PackedKv& packed) {
  std::int64_t numel = 1;
  for (std::int64_t s : packed.shape) numel *= s;
  at::Tensor flat = at::zeros({numel}, at::TensorOptions().dtype(packed.dtype));
  if (packed.params.n_groups > 0) {
    at::Tensor deq = at::empty({packed.params.n_groups * packed.params.group_len}, at::kFloat);
    unpack_dequantize_cpu(packed.codes.data_ptr<std::uint8_t>(), packed.scales.data_ptr(), packed.zeros.data_ptr(),
                          packed.params, deq.data_ptr<float>());
    flat.index_copy_(0, packed.group_index.view({-1}), deq.to(packed.dtype));
  }
  if (packed.exact_index.numel() > 0) flat.index_copy_(0, packed.exact_index, packed.exact_values);
  return flat.view(packed.shape);
}

at::Tensor fake_quantize_cache(const at::Tensor& x, const at::Tensor& valid, const KvSideSpec& side,
                               const CacheQuantOptions& options) {
  if (side.scheme == KvScheme::kNone) return x;
  return unpack_cache(pack_cache(x, valid, side, options));
}

}  // namespace kvsafe::kernels
