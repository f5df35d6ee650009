// KvCacheQuantizer: see kv_cache_quantizer.h.

#include "kernels/kv_cache_quantizer.h"

#include <ATen/ATen.h>

#include "common/error.h"

namespace kvsafe::kernels {

KvCacheQuantizer::KvCacheQuantizer(KvSideSpec key, KvSideSpec value) : key_(std::move(key)), value_(std::move(value)) {
  const auto ok = [](const KvSideSpec& s) { return s.scheme == KvScheme::kNone || s.placement == Placement::kCache; };
  KVSAFE_CHECK(ok(key_) && ok(value_), "KvCacheQuantizer needs placement cache; projection quantizers are stateless");
}

void KvCacheQuantizer::append(const at::Tensor& k, const at::Tensor& v, const at::Tensor& valid) {
  KVSAFE_CHECK(k.dim() == 4 && v.dim() == 4, "append takes [batch, heads, tokens, head_dim] keys and values");
  KVSAFE_CHECK(k.size(0) == v.size(0) && k.size(2) == v.size(2), "keys and values disagree on batch or tokens");
  const at::Tensor mask = valid.defined() ? valid.to(at::kBool) : at::ones({k.size(0), k.size(2)}, at::kBool);
  KVSAFE_CHECK(mask.dim() == 2 && mask.size(0) == k.size(0) && mask.size(1) == k.size(2),
               "valid mask must be [batch, new_tokens]");
  check_finite(k, "appended keys");
  check_finite(v, "appended values");
  if (!k_.defined()) {
    k_ = k.contiguous();
    v_ = v.contiguous();
    valid_ = mask;
    // vLLM calibrates once, on the first forward, then freezes the scale.
    const auto scale = [&](const KvSideSpec& s, const at::Tensor& x, KvSide side) {
      if (!is_fp8(s.scheme)) return 0.0f;
      return s.fp8_scale == Fp8ScaleSource::kCalibrated ? fp8_calibrated_scale(x, side) : 1.0f;
    };
    key_scale_ = scale(key_, k, KvSide::kKey);
    value_scale_ = scale(value_, v, KvSide::kValue);
  } else {
    KVSAFE_CHECK(k.size(0) == k_.size(0) && k.size(1) == k_.size(1) && k.size(3) == k_.size(3) &&
                     v.size(1) == v_.size(1) && v.size(3) == v_.size(3),
                 "append shape changed: batch, heads and head_dim must stay as in the first call");
    k_ = at::cat({k_, k}, 2);
    v_ = at::cat({v_, v}, 2);
    valid_ = at::cat({valid_, mask}, 1);
  }
  dirty_ = true;
}

void KvCacheQuantizer::refresh() {
  if (!dirty_) return;
  KVSAFE_CHECK(k_.defined(), "read before any append");
  const PackedKv pk = pack_cache(k_, valid_, key_, {.fp8_scale = key_scale_});
  const PackedKv pv = pack_cache(v_, valid_, value_, {.fp8_scale = value_scale_});
  k_read_ = key_.scheme == KvScheme::kNone ? k_ : unpack_cache(pk);
  v_read_ = value_.scheme == KvScheme::kNone ? v_ : unpack_cache(pv);
  memory_ = pk.memory_bytes() + pv.memory_bytes();
  dirty_ = false;
}

std::pair<at::Tensor, at::Tensor> KvCacheQuantizer::read() {
  refresh();
  return {k_read_, v_read_};
}

std::int64_t KvCacheQuantizer::tokens() const {
  return k_.defined() ? k_.size(2) : 0;
}

std::int64_t KvCacheQuantizer::memory_bytes() {
  refresh();
  return memory_;
}

}  // namespace kvsafe::kernels
