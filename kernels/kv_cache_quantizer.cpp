// KvCacheQuantizer: see kv_cache_quantizer.h.

#include "kernels/kv_cache_quantizer.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "common/error.h"
#include "kernels/kv_quant_cache_layout.h"

namespace kvsafe::kernels {

using at::indexing::Slice;

// ---- one side ------------------------------------------------------------------------------

void KvCacheQuantizer::Side::start(const at::Tensor& x, float fp8_scale) {
  const std::int64_t B = x.size(0), D = x.size(3);
  valid_.assign(static_cast<std::size_t>(B), {});
  quantized_.assign(static_cast<std::size_t>(B), 0);
  cache_ = at::empty({B, x.size(1), 0, D}, x.options());
  if (spec_.scheme == KvScheme::kNone) return;
  const std::vector<int> channels = detail::quantized_channels(spec_, D);
  dq_ = static_cast<std::int64_t>(channels.size());
  params_ = detail::cache_codec_params(spec_, dq_, D, fp8_scale);
  all_channels_ = dq_ == D;
  channels_ = at::tensor(std::vector<std::int64_t>(channels.begin(), channels.end()), at::kLong).to(x.device());
  if (detail::token_grouped(spec_)) {
    // NOTE: pack_cache cuts each flush of F tokens into blocks of G; a partial block would
    // read past the flush (the spec refuses R % G != 0 when G is given; G = 32 by default).
    KVSAFE_CHECK(detail::token_flush(spec_) % params_.group_len == 0, "residual ", spec_.residual,
                 " must be a multiple of the key token group ", params_.group_len);
  }
}

void KvCacheQuantizer::Side::append(const at::Tensor& x, const std::vector<std::vector<std::int64_t>>& new_valid) {
  const std::int64_t n = x.size(2);
  const std::int64_t capacity = cache_.size(2);
  if (tokens_ + n > capacity) {
    // NOTE: grow by doubling (engine::ExactKvStore does the same) so that a decode step
    // copies only its own token, not the whole history.
    const std::int64_t grown = std::max({tokens_ + n + 64, 2 * capacity});
    at::Tensor bigger = at::empty({cache_.size(0), cache_.size(1), grown, cache_.size(3)}, cache_.options());
    if (tokens_ > 0) bigger.narrow(2, 0, tokens_).copy_(cache_.narrow(2, 0, tokens_));
    cache_ = bigger;
  }
  cache_.narrow(2, tokens_, n).copy_(x);
  for (std::size_t b = 0; b < valid_.size(); ++b) {
    for (std::int64_t t : new_valid[b]) valid_[b].push_back(tokens_ + t);
    valid_tokens_ += static_cast<std::int64_t>(new_valid[b].size());
  }
  tokens_ += n;
  if (spec_.scheme == KvScheme::kNone || dq_ == 0) return;
  const bool grouped = detail::token_grouped(spec_);
  for (std::size_t b = 0; b < valid_.size(); ++b) {
    const auto count = static_cast<std::int64_t>(valid_[b].size());
    // Token-wise: all but the last R valid tokens. Token-grouped: whole flushes of F.
    const std::int64_t target = grouped ? count / detail::token_flush(spec_) * detail::token_flush(spec_)
                                        : std::max<std::int64_t>(0, count - spec_.residual);
    if (target > quantized_[b]) {
      quantize_rows(static_cast<std::int64_t>(b), quantized_[b], target);
      quantized_[b] = target;
    }
  }
}

// Quantizes valid tokens [first, last) of sequence b (still exact in cache_), appends their
// groups to the packed store and writes the dequantized values over them.
void KvCacheQuantizer::Side::quantize_rows(std::int64_t b, std::int64_t first, std::int64_t last) {
  const auto& positions = valid_[static_cast<std::size_t>(b)];
  const at::Tensor idx =
      at::tensor(std::vector<std::int64_t>(positions.begin() + first, positions.begin() + last), at::kLong)
          .to(cache_.device());
  at::Tensor slab = cache_.select(0, b);  // [heads, capacity, head_dim]
  const at::Tensor x =
      all_channels_ ? slab.index_select(1, idx) : slab.index({Slice(), idx.view({-1, 1}), channels_.view({1, -1})});
  // x: [heads, nt, dq]. Token-wise groups run along channels; token-grouped ones along G
  // consecutive tokens of one channel, as pack_cache cuts them.
  const bool grouped = detail::token_grouped(spec_);
  at::Tensor xs = x.to(at::kCPU, at::kFloat);
  const std::int64_t H = x.size(0), nt = x.size(1), G = params_.group_len;
  if (grouped) xs = xs.permute({0, 2, 1}).reshape({H, dq_, nt / G, G});
  xs = xs.contiguous();
  CodecParams p = params_;
  p.n_groups = xs.numel() / p.group_len;
  const std::size_t code_at = codes_.size(), scale_at = scales_.size(), zero_at = zeros_.size();
  codes_.resize(code_at + static_cast<std::size_t>(p.n_groups * codes_bytes(p)));
  scales_.resize(scale_at + static_cast<std::size_t>(p.n_groups * scale_bytes(p)));
  zeros_.resize(zero_at + static_cast<std::size_t>(p.n_groups * zero_bytes(p)));
  quantize_pack_cpu(xs.data_ptr<float>(), p, codes_.data() + code_at, scales_.data() + scale_at,
                    zeros_.data() + zero_at);
  at::Tensor deq = at::empty_like(xs);
  unpack_dequantize_cpu(codes_.data() + code_at, scales_.data() + scale_at, zeros_.data() + zero_at, p,
                        deq.data_ptr<float>());
  groups_ += p.n_groups;
  if (grouped) deq = deq.view({H, dq_, nt}).permute({0, 2, 1});
  deq = deq.to(cache_.options());
  if (all_channels_) {
    slab.index_copy_(1, idx, deq);
  } else {
    slab.index_put_({Slice(), idx.view({-1, 1}), channels_.view({1, -1})}, deq);
  }
}

at::Tensor KvCacheQuantizer::Side::read() const {
  return cache_.narrow(2, 0, tokens_);
}

std::int64_t KvCacheQuantizer::Side::memory_bytes() const {
  // As PackedKv::memory_bytes: codes + scales + zeros + exact real-token elements at 2 bytes.
  const std::int64_t valid_elements = valid_tokens_ * cache_.size(1) * cache_.size(3);
  return static_cast<std::int64_t>(codes_.size() + scales_.size() + zeros_.size()) +
         2 * (valid_elements - groups_ * params_.group_len);
}

// ---- the layer's cache ---------------------------------------------------------------------

KvCacheQuantizer::KvCacheQuantizer(KvSideSpec key, KvSideSpec value) : key_(key), value_(value) {
  const auto ok = [](const KvSideSpec& s) { return s.scheme == KvScheme::kNone || s.placement == Placement::kCache; };
  KVSAFE_CHECK(ok(key) && ok(value), "KvCacheQuantizer needs placement cache; projection quantizers are stateless");
}

void KvCacheQuantizer::append(const at::Tensor& k, const at::Tensor& v, const at::Tensor& valid) {
  KVSAFE_CHECK(k.dim() == 4 && v.dim() == 4, "append takes [batch, heads, tokens, head_dim] keys and values");
  KVSAFE_CHECK(k.size(0) == v.size(0) && k.size(2) == v.size(2), "keys and values disagree on batch or tokens");
  KVSAFE_CHECK(k.is_floating_point() && v.is_floating_point(), "cache tensors must be floating point");
  const at::Tensor mask =
      (valid.defined() ? valid.to(at::kCPU, at::kBool) : at::ones({k.size(0), k.size(2)}, at::kBool)).contiguous();
  KVSAFE_CHECK(mask.dim() == 2 && mask.size(0) == k.size(0) && mask.size(1) == k.size(2),
               "valid mask must be [batch, new_tokens]");
  check_finite(k, "appended keys");
  check_finite(v, "appended values");
  if (!started_) {
    // vLLM calibrates once, on the first forward, then freezes the scale.
    const auto scale = [&](const KvSideSpec& s, const at::Tensor& x, KvSide side) {
      if (!is_fp8(s.scheme)) return 0.0f;
      return s.fp8_scale == Fp8ScaleSource::kCalibrated ? fp8_calibrated_scale(x, side) : 1.0f;
    };
    key_scale_ = scale(key_.spec(), k, KvSide::kKey);
    value_scale_ = scale(value_.spec(), v, KvSide::kValue);
    key_.start(k, key_scale_);
    value_.start(v, value_scale_);
    started_ = true;
  } else {
    const at::Tensor held = key_.read();
    const at::Tensor held_v = value_.read();
    KVSAFE_CHECK(k.size(0) == held.size(0) && k.size(1) == held.size(1) && k.size(3) == held.size(3) &&
                     v.size(1) == held_v.size(1) && v.size(3) == held_v.size(3),
                 "append shape changed: batch, heads and head_dim must stay as in the first call");
  }
  std::vector<std::vector<std::int64_t>> new_valid(static_cast<std::size_t>(k.size(0)));
  const bool* m = mask.data_ptr<bool>();
  for (std::int64_t b = 0; b < k.size(0); ++b) {
    for (std::int64_t t = 0; t < k.size(2); ++t) {
      if (m[b * k.size(2) + t]) new_valid[static_cast<std::size_t>(b)].push_back(t);
    }
  }
  key_.append(k, new_valid);
  value_.append(v, new_valid);
}

std::pair<at::Tensor, at::Tensor> KvCacheQuantizer::read() {
  KVSAFE_CHECK(started_, "read before any append");
  return {key_.read(), value_.read()};
}

std::int64_t KvCacheQuantizer::tokens() const {
  return started_ ? key_.read().size(2) : 0;
}

std::int64_t KvCacheQuantizer::memory_bytes() {
  KVSAFE_CHECK(started_, "read before any append");
  return key_.memory_bytes() + value_.memory_bytes();
}

std::int64_t KvCacheQuantizer::quantized_groups() const {
  return key_.groups() + value_.groups();
}

}  // namespace kvsafe::kernels
