// make_kv_path: the kernels' quantizers behind the engine's KvPath (quantized_kv_path.h).

#include "engine/quantized_kv_path.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <utility>

#include "common/error.h"
#include "kernels/kv_cache_quantizer.h"
#include "kernels/kv_quant.h"

namespace kvsafe::engine {
namespace {

kernels::KvSide to_kernels(KvSide side) {
  return side == KvSide::kKey ? kernels::KvSide::kKey : kernels::KvSide::kValue;
}

// Mean squared error of what attention reads for the appended slots against the exact
// input, over real tokens only (padding is stored exactly and would dilute it).
double appended_mse(const at::Tensor& read, const at::Tensor& exact, const at::Tensor& valid) {
  const std::int64_t n = exact.size(2);
  const at::Tensor now = read.narrow(2, read.size(2) - n, n).to(at::kDouble);
  at::Tensor diff = (now - exact.to(at::kDouble)).pow(2);  // [batch, heads, n, dim]
  if (!valid.defined()) return diff.mean().item<double>();
  const at::Tensor mask = valid.to(at::kBool).to(diff.device()).unsqueeze(1).unsqueeze(-1).expand_as(diff);
  const std::int64_t count = mask.sum().item<std::int64_t>();
  if (count == 0) return 0.0;
  return diff.masked_select(mask).sum().item<double>() / static_cast<double>(count);
}

// Placement cache: one layer's store backed by the kernels' stateful cache quantizer.
// Truncation (KvStoreShape::truncatable) re-derives the quantizer from the exact K/V it was
// given, kept beside it: a group quantized with dropped slots in it (a per-channel or KIVI
// key flush, a token leaving a residual window because of a later token) must be undone,
// and the quantizer keeps only the dequantized values. A fresh quantizer is fed the kept
// slots again, the first call's slots as one append (FP8's calibrated scale comes from the
// first append) and the rest as another; the quantizer's state does not depend on how the
// later slots were split into appends (kernels/kv_cache_quantizer.h: every group is
// quantized once, when it leaves the window), so the result is bit for bit what appending
// only the kept slots gives. Cost: twice the memory, and each truncate re-quantizes the
// whole kept history, O(tokens), once per layer.
class QuantizedKvStore final : public KvLayerStore {
 public:
  QuantizedKvStore(kernels::KvSideSpec key, kernels::KvSideSpec value, const KvStoreShape& shape)
      : key_(key), value_(value), quantizer_(std::move(key), std::move(value)) {
    if (shape.truncatable) exact_ = std::make_unique<ExactKvStore>(shape);
  }

  KvRead append(const at::Tensor& keys, const at::Tensor& values, const at::Tensor& valid) override {
    if (exact_) remember(keys, values, valid);
    quantizer_.append(keys, values, valid);
    auto [k, v] = quantizer_.read();
    return {
        .keys = k, .values = v, .key_mse = appended_mse(k, keys, valid), .value_mse = appended_mse(v, values, valid)};
  }
  std::int64_t tokens() const override { return quantizer_.tokens(); }
  bool truncate(std::int64_t tokens) override {
    if (!exact_) return false;
    KVSAFE_ASSERT(tokens >= 0 && tokens <= this->tokens());
    if (tokens == this->tokens()) return true;
    exact_->truncate(tokens);
    exact_keys_ = exact_keys_.narrow(2, 0, tokens);
    exact_values_ = exact_values_.narrow(2, 0, tokens);
    valid_ = valid_.narrow(1, 0, tokens);
    first_call_ = std::min(first_call_, tokens);
    quantizer_ = kernels::KvCacheQuantizer(key_, value_);
    const auto replay = [&](std::int64_t begin, std::int64_t end) {
      if (end > begin) {
        quantizer_.append(exact_keys_.narrow(2, begin, end - begin), exact_values_.narrow(2, begin, end - begin),
                          valid_.narrow(1, begin, end - begin));
      }
    };
    replay(0, first_call_);
    replay(first_call_, tokens);
    return true;
  }
  std::int64_t memory_bytes() const override { return quantizer_.memory_bytes(); }

 private:
  // Keeps a call's exact input for truncate().
  void remember(const at::Tensor& keys, const at::Tensor& values, const at::Tensor& valid) {
    const std::int64_t n = keys.size(2);
    const at::Tensor mask = valid.defined() ? valid.to(at::kCPU, at::kBool)
                                            : at::ones({keys.size(0), n}, at::TensorOptions().dtype(at::kBool));
    if (exact_->tokens() == 0) first_call_ = n;
    const KvRead held = exact_->append(keys, values, mask);
    exact_keys_ = held.keys;
    exact_values_ = held.values;
    valid_ = valid_.defined() ? at::cat({valid_, mask}, 1) : mask;
  }

  kernels::KvSideSpec key_, value_;              // the quantizer's sides, to start it again
  mutable kernels::KvCacheQuantizer quantizer_;  // memory_bytes() packs lazily
  std::unique_ptr<ExactKvStore> exact_;          // the exact K/V appended, when truncatable
  at::Tensor exact_keys_, exact_values_;         // [batch, kv_heads, tokens, head_dim]: exact_'s slots in use
  at::Tensor valid_;                             // bool [batch, tokens] on the CPU: each slot's valid flag
  std::int64_t first_call_ = 0;                  // slots of the first append (still held)
};

class QuantizedKvPath final : public KvPath {
 public:
  explicit QuantizedKvPath(kernels::KvQuantSpec spec) : spec_(std::move(spec)) {}

  KvPlacement placement() const override {
    return spec_.placement == kernels::Placement::kCache ? KvPlacement::kCache : KvPlacement::kProjection;
  }
  KvPrefillAttention prefill_attention() const override {
    return spec_.prefill_attention == kernels::PrefillAttention::kQuantized ? KvPrefillAttention::kQuantized
                                                                            : KvPrefillAttention::kExact;
  }
  // KVQuant's pre-RoPE keys: the store quantizes keys before RoPE (canonicalize clears the
  // flag for placement projection, whose hooks are pre-RoPE anyway).
  bool keys_before_rope() const override { return spec_.pre_rope; }

  at::Tensor project(const at::Tensor& x, const KvProjectionCall& call, double* mse) override {
    const kernels::KvSideSpec side = kernels::resolve_side(spec_, to_kernels(call.side), static_cast<int>(call.layer));
    if (side.scheme == kernels::KvScheme::kNone) return x;
    // NOTE: Phi-3's fused qkv_proj is split at load, so its K and V slices reach this hook
    // separately; slice-wise statistics make that identical to the paper's fused hook, only
    // the MSE is per side instead of over both slices.
    return kernels::fake_quantize_projection(x, side, mse, fp8_scale(side, x, call));
  }

  std::unique_ptr<KvLayerStore> make_store(const KvStoreShape& shape) override {
    const int layer = static_cast<int>(shape.layer);
    kernels::KvSideSpec key = kernels::resolve_side(spec_, kernels::KvSide::kKey, layer);
    kernels::KvSideSpec value = kernels::resolve_side(spec_, kernels::KvSide::kValue, layer);
    if (key.scheme == kernels::KvScheme::kNone && value.scheme == kernels::KvScheme::kNone) {
      return std::make_unique<ExactKvStore>(shape);
    }
    return std::make_unique<QuantizedKvStore>(std::move(key), std::move(value), shape);
  }

 private:
  // FP8 in the projection placement: scale 1.0, or calibrated on the first call that reaches
  // this layer and side and then frozen for the path's lifetime (vLLM calculate_kv_scales).
  float fp8_scale(const kernels::KvSideSpec& side, const at::Tensor& x, const KvProjectionCall& call) {
    if (!kernels::is_fp8(side.scheme) || side.fp8_scale != kernels::Fp8ScaleSource::kCalibrated) return 1.0f;
    const auto key = std::make_pair(call.layer, call.side);
    auto found = calibrated_.find(key);
    if (found == calibrated_.end()) {
      found = calibrated_.emplace(key, kernels::fp8_calibrated_scale(x, to_kernels(call.side))).first;
    }
    return found->second;
  }

  kernels::KvQuantSpec spec_;
  std::map<std::pair<std::int64_t, KvSide>, float> calibrated_;
};

}  // namespace

std::unique_ptr<KvPath> make_kv_path(const kernels::KvQuantSpec& spec) {
  kernels::check_kv_spec(spec);
  const kernels::KvQuantSpec canonical = kernels::canonicalize(spec);
  if (canonical.scheme == kernels::KvScheme::kNone && canonical.layer_rules.empty()) return nullptr;
  return std::make_unique<QuantizedKvPath>(canonical);
}

}  // namespace kvsafe::engine
