// make_kv_path: the kernels' quantizers behind the engine's KvPath (quantized_kv_path.h).

#include "engine/quantized_kv_path.h"

#include <ATen/ATen.h>

#include <map>
#include <utility>

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
class QuantizedKvStore final : public KvLayerStore {
 public:
  QuantizedKvStore(kernels::KvSideSpec key, kernels::KvSideSpec value) : quantizer_(std::move(key), std::move(value)) {}

  KvRead append(const at::Tensor& keys, const at::Tensor& values, const at::Tensor& valid) override {
    quantizer_.append(keys, values, valid);
    auto [k, v] = quantizer_.read();
    return {
        .keys = k, .values = v, .key_mse = appended_mse(k, keys, valid), .value_mse = appended_mse(v, values, valid)};
  }
  std::int64_t tokens() const override { return quantizer_.tokens(); }
  std::int64_t memory_bytes() const override { return quantizer_.memory_bytes(); }

 private:
  mutable kernels::KvCacheQuantizer quantizer_;  // memory_bytes() packs lazily
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
    return std::make_unique<QuantizedKvStore>(std::move(key), std::move(value));
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
