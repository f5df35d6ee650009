// Paper mode (placement projection): the authors' core/quantization.py as ATen ops, in the
// tensor's dtype and in the same order, so results match torch bit for bit.

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>

#include "common/error.h"
#include "kernels/kv_quant.h"

namespace kvsafe::kernels {
namespace {

struct Range {
  std::int64_t qmin;
  std::int64_t qmax;
};

Range code_range(int bits, bool symmetric) {
  if (symmetric) return {-(std::int64_t{1} << (bits - 1)), (std::int64_t{1} << (bits - 1)) - 1};
  return {0, (std::int64_t{1} << bits) - 1};
}

// Asymmetric min-max with reductions over `dims` (empty = whole tensor).
at::Tensor asym(const at::Tensor& x, Range r, at::IntArrayRef dims) {
  const at::Tensor lo = dims.empty() ? x.min() : x.amin(dims, /*keepdim=*/true);
  const at::Tensor hi = dims.empty() ? x.max() : x.amax(dims, /*keepdim=*/true);
  at::Tensor scale = (hi - lo) / (r.qmax - r.qmin);
  scale = at::clamp_min(scale, 1e-8);
  const at::Tensor zero_point = at::clamp(at::round(r.qmin - lo / scale), r.qmin, r.qmax);
  const at::Tensor q = at::clamp(at::round(x / scale + zero_point), r.qmin, r.qmax);
  return ((q - zero_point) * scale).to(x.scalar_type());
}

// Symmetric with the absmax clamped to >= 1e-8 (per_token, per_channel, per_group).
at::Tensor sym(const at::Tensor& x, Range r, at::IntArrayRef dims) {
  at::Tensor abs_max = x.abs().amax(dims, /*keepdim=*/true);
  abs_max = at::clamp_min(abs_max, 1e-8);
  const at::Tensor scale = abs_max / r.qmax;
  const at::Tensor q = at::clamp(at::round(x / scale), r.qmin, r.qmax);
  return (q * scale).to(x.scalar_type());
}

at::Tensor per_group(const at::Tensor& x, Range r, bool symmetric, int group_size) {
  const std::int64_t channels = x.size(-1);
  const std::int64_t pad = (group_size - channels % group_size) % group_size;
  const at::Tensor padded = pad > 0 ? at::constant_pad_nd(x, {0, pad}, 0.0) : x;
  std::vector<std::int64_t> grouped_shape(padded.sizes().begin(), padded.sizes().end() - 1);
  grouped_shape.push_back(-1);
  grouped_shape.push_back(group_size);
  const at::Tensor grouped = padded.reshape(grouped_shape);
  const at::Tensor result = symmetric ? sym(grouped, r, {-1}) : asym(grouped, r, {-1});
  const at::Tensor back = result.reshape(padded.sizes());
  return pad > 0 ? back.slice(-1, 0, channels) : back;
}

// Runs a codec (fp8, ggml) over rows of the last dim, through float32.
at::Tensor codec_rows(const at::Tensor& x, const KvSideSpec& side, float fp8_scale) {
  const at::Tensor xf = x.to(at::kFloat).contiguous();
  CodecParams p{.codec = codec_for(side), .bits = side.bits, .fp8_scale = fp8_scale};
  p.group_len = is_llama_cpp(side.scheme) ? 32 : static_cast<int>(x.size(-1));
  KVSAFE_CHECK(x.size(-1) % p.group_len == 0, "llama.cpp types quantize blocks of 32; the last dim is ", x.size(-1));
  p.n_groups = xf.numel() / p.group_len;
  at::Tensor codes = at::empty({p.n_groups * codes_bytes(p)}, at::kByte);
  at::Tensor scales = at::empty({p.n_groups * std::max(1, scale_bytes(p))}, at::kByte);
  at::Tensor zeros = at::empty({p.n_groups * std::max(1, zero_bytes(p))}, at::kByte);
  at::Tensor out = at::empty_like(xf);
  quantize_pack_cpu(xf.data_ptr<float>(), p, codes.data_ptr<std::uint8_t>(), scales.data_ptr(), zeros.data_ptr());
  unpack_dequantize_cpu(codes.data_ptr<std::uint8_t>(), scales.data_ptr(), zeros.data_ptr(), p, out.data_ptr<float>());
  return out.to(x.scalar_type());
}

at::Tensor quantize_side(const at::Tensor& x, const KvSideSpec& side, float fp8_scale) {
  if (side.scheme == KvScheme::kInt) {
    Granularity g = side.granularity;
    if (side.single_token_per_token && g == Granularity::kPerChannel && x.dim() >= 2 && x.size(-2) == 1) {
      g = Granularity::kPerToken;  // KVQuantizerDual: one value per channel is degenerate
    }
    return paper_fake_quantize(x, side.bits, side.symmetric, g, side.group_size);
  }
  return codec_rows(x, side, fp8_scale);
}

}  // namespace

void check_finite(const at::Tensor& x, const char* what) {
  if (!x.is_floating_point() || x.numel() == 0) return;
  KVSAFE_CHECK(at::isfinite(x).all().item<bool>(), what,
               " holds NaN or Inf; quantizing it would poison whole groups (check the model's activations)");
}

at::Tensor paper_fake_quantize(const at::Tensor& x, int bits, bool symmetric, Granularity granularity, int group_size) {
  if (bits >= 16) return x;
  KVSAFE_CHECK(bits >= 2 && bits <= 8, "paper quantizer bits must be 2..8 or 16, got ", bits);
  KVSAFE_CHECK(x.is_floating_point(), "paper quantizer needs a floating-point tensor");
  const Range r = code_range(bits, symmetric);
  switch (granularity) {
    case Granularity::kPerGroup:
      KVSAFE_CHECK(group_size >= 1, "per_group needs group_size >= 1, got ", group_size);
      return per_group(x, r, symmetric, group_size);
    case Granularity::kPerTensor:
      if (symmetric) {
        const at::Tensor max_val = x.abs().max();
        if (max_val.item<double>() < 1e-10) return x;
        const at::Tensor scale = max_val / r.qmax;
        const at::Tensor q = at::clamp(at::round(x / scale), r.qmin, r.qmax);
        return (q * scale).to(x.scalar_type());
      }
      return asym(x, r, {});
    case Granularity::kPerToken:
      return symmetric ? sym(x, r, {-1}) : asym(x, r, {-1});
    case Granularity::kPerChannel: {
      std::vector<std::int64_t> dims(static_cast<std::size_t>(x.dim() - 1));
      std::iota(dims.begin(), dims.end(), 0);
      return symmetric ? sym(x, r, dims) : asym(x, r, dims);
    }
  }
  return x;
}

at::Tensor fake_quantize_projection(const at::Tensor& x, const KvSideSpec& side, double* mse, float fp8_scale) {
  if (side.scheme == KvScheme::kNone) {
    if (mse != nullptr) *mse = 0.0;
    return x;
  }
  check_finite(x, "projection output");
  KVSAFE_CHECK(side.outliers.explicit_list || side.outliers.count == 0, "outlier_channels ", side.outliers.count,
               " needs calibration first: pass the channels from top_k_channels() as an explicit list");
  std::vector<int> channels = side.quantize_channels;
  if (side.outliers.explicit_list && !side.outliers.channels.empty()) {
    // Keep the outliers exact: quantize every other channel, statistics over those only.
    for (int c = 0; c < x.size(-1); ++c) {
      if (!std::binary_search(side.outliers.channels.begin(), side.outliers.channels.end(), c)) {
        channels.push_back(c);
      }
    }
  }
  at::Tensor out;
  if (channels.empty()) {
    out = quantize_side(x, side, fp8_scale);
  } else {
    for (int c : channels) {
      KVSAFE_CHECK(c < x.size(-1), "channel ", c, " does not exist (the tensor has ", x.size(-1), " channels)");
    }
    const at::Tensor idx =
        at::tensor(std::vector<std::int64_t>(channels.begin(), channels.end()), at::kLong).to(x.device());
    out = x.clone();
    const at::Tensor slice = x.index_select(-1, idx);
    out.index_copy_(-1, idx, quantize_side(slice, side, fp8_scale));
  }
  if (mse != nullptr) *mse = at::mse_loss(out, x).item<double>();
  return out;
}

at::Tensor fake_quantize_fused_qkv(const at::Tensor& qkv, std::int64_t q_size, std::int64_t kv_size,
                                   const KvSideSpec& key, const KvSideSpec& value, double* mse) {
  KVSAFE_CHECK(qkv.size(-1) == q_size + 2 * kv_size, "fused qkv has ", qkv.size(-1), " channels, expected q ", q_size,
               " + 2 x kv ", kv_size);
  at::Tensor out = qkv.clone();
  const at::Tensor k = qkv.slice(-1, q_size, q_size + kv_size);
  const at::Tensor v = qkv.slice(-1, q_size + kv_size, q_size + 2 * kv_size);
  out.slice(-1, q_size, q_size + kv_size).copy_(fake_quantize_projection(k, key));
  out.slice(-1, q_size + kv_size, q_size + 2 * kv_size).copy_(fake_quantize_projection(v, value));
  if (mse != nullptr) {
    const at::Tensor orig = at::cat({k, v}, -1);
    const at::Tensor quant =
        at::cat({out.slice(-1, q_size, q_size + kv_size), out.slice(-1, q_size + kv_size, q_size + 2 * kv_size)}, -1);
    *mse = at::mse_loss(quant, orig).item<double>();
  }
  return out;
}

std::vector<int> top_k_channels(const at::Tensor& absmax, int count) {
  KVSAFE_CHECK(absmax.dim() == 1, "top_k_channels needs a 1-d tensor of per-channel magnitudes");
  KVSAFE_CHECK(count >= 0 && count <= absmax.size(0), "cannot keep ", count, " of ", absmax.size(0), " channels");
  const at::Tensor a = absmax.to(at::kDouble).contiguous();
  const double* v = a.data_ptr<double>();
  std::vector<int> ids(static_cast<std::size_t>(a.size(0)));
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int i, int j) { return v[i] > v[j]; });
  ids.resize(static_cast<std::size_t>(count));
  std::sort(ids.begin(), ids.end());
  return ids;
}

float fp8_calibrated_scale(const at::Tensor& x, KvSide side) {
  check_finite(x, "fp8 calibration input");
  const float amax = x.numel() == 0 ? 0.0f : x.abs().max().to(at::kFloat).item<float>();
  if (amax == 0.0f) return 1.0f;
  return amax / (side == KvSide::kKey ? 200.0f : 100.0f);
}

Codec codec_for(const KvSideSpec& side) {
  switch (side.scheme) {
    case KvScheme::kInt:
      return side.symmetric ? Codec::kIntSym : Codec::kIntAsym;
    case KvScheme::kKivi:
      return Codec::kIntAsym;
    case KvScheme::kFp8E4M3:
      return Codec::kFp8E4M3;
    case KvScheme::kFp8E5M2:
      return Codec::kFp8E5M2;
    case KvScheme::kQ8_0:
      return Codec::kQ8_0;
    case KvScheme::kQ4_0:
      return Codec::kQ4_0;
    case KvScheme::kQ4_1:
      return Codec::kQ4_1;
    case KvScheme::kQ5_0:
      return Codec::kQ5_0;
    case KvScheme::kQ5_1:
      return Codec::kQ5_1;
    case KvScheme::kNone:
      break;
  }
  throw InputError("scheme none has no codec");
}

}  // namespace kvsafe::kernels
