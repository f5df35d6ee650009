// KvCache (engine/kv_cache.h) and the exact KV path pieces (engine/kv_path.h).

#include "engine/kv_cache.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "engine/model.h"

namespace kvsafe::engine {

// ---- KvPath defaults ----------------------------------------------------------------------

at::Tensor KvPath::project(const at::Tensor& x, const KvProjectionCall& /*call*/, double* /*mse*/) {
  return x;
}

std::unique_ptr<KvLayerStore> KvPath::make_store(const KvStoreShape& shape) {
  return std::make_unique<ExactKvStore>(shape);
}

// ---- ExactKvStore -------------------------------------------------------------------------

namespace {

// dst.copy_(src) for two [batch, heads, n, dim] float32 CPU tensors whose last dimension is
// contiguous, one row of dim floats at a time.
// NOTE: at::copy_'s fixed cost per call dominates for a decode step's few short rows, two
// calls per layer on the calling thread while the other cores wait.
void copy_rows(const at::Tensor& dst, const at::Tensor& src) {
  const bool direct = dst.device().is_cpu() && src.device().is_cpu() && dst.scalar_type() == at::kFloat &&
                      src.scalar_type() == at::kFloat && dst.dim() == 4 && dst.sizes() == src.sizes() &&
                      dst.stride(3) == 1 && src.stride(3) == 1;
  if (!direct) {
    dst.copy_(src);
    return;
  }
  float* d = dst.data_ptr<float>();
  const float* s = src.data_ptr<float>();
  const auto bytes = static_cast<std::size_t>(dst.size(3)) * sizeof(float);
  for (std::int64_t b = 0; b < dst.size(0); ++b) {
    for (std::int64_t h = 0; h < dst.size(1); ++h) {
      for (std::int64_t t = 0; t < dst.size(2); ++t) {
        std::memcpy(d + b * dst.stride(0) + h * dst.stride(1) + t * dst.stride(2),
                    s + b * src.stride(0) + h * src.stride(1) + t * src.stride(2), bytes);
      }
    }
  }
}

}  // namespace

ExactKvStore::ExactKvStore(const KvStoreShape& shape) : shape_(shape) {}

KvRead ExactKvStore::append(const at::Tensor& keys, const at::Tensor& values, const at::Tensor& /*valid*/) {
  KVSAFE_ASSERT(keys.dim() == 4 && keys.sizes() == values.sizes(), "ExactKvStore: K/V must be equal 4-d tensors");
  KVSAFE_ASSERT(keys.size(0) == shape_.batch && keys.size(1) == shape_.kv_heads && keys.size(3) == shape_.head_dim);
  const std::int64_t n = keys.size(2);
  const std::int64_t capacity = keys_.defined() ? keys_.size(2) : 0;
  if (tokens_ + n > capacity) {
    // NOTE: grow by doubling (at least 64 slots of room) so that a decode step copies only
    // its own token, not the whole history; the first allocation takes the expected total.
    const std::int64_t grown = std::max({tokens_ + n + 64, 2 * capacity, capacity == 0 ? shape_.expected_tokens : 0});
    const auto options = keys.options();
    at::Tensor k = at::empty({shape_.batch, shape_.kv_heads, grown, shape_.head_dim}, options);
    at::Tensor v = at::empty({shape_.batch, shape_.kv_heads, grown, shape_.head_dim}, options);
    if (tokens_ > 0) {
      k.narrow(2, 0, tokens_).copy_(keys_.narrow(2, 0, tokens_));
      v.narrow(2, 0, tokens_).copy_(values_.narrow(2, 0, tokens_));
    }
    keys_ = k;
    values_ = v;
  }
  copy_rows(keys_.narrow(2, tokens_, n), keys);
  copy_rows(values_.narrow(2, tokens_, n), values);
  tokens_ += n;
  return {.keys = keys_.narrow(2, 0, tokens_), .values = values_.narrow(2, 0, tokens_)};
}

bool ExactKvStore::truncate(std::int64_t tokens) {
  KVSAFE_ASSERT(tokens >= 0 && tokens <= tokens_);
  tokens_ = tokens;
  return true;
}

std::int64_t ExactKvStore::memory_bytes() const {
  if (!keys_.defined()) return 0;
  return 2 * shape_.batch * shape_.kv_heads * tokens_ * shape_.head_dim *
         static_cast<std::int64_t>(keys_.element_size());
}

// ---- KvCache ------------------------------------------------------------------------------

KvCache::KvCache(const Model& model, std::int64_t batch, KvPath* path)
    : batch_(batch), num_layers_(model.config().num_layers), path_(path) {
  KVSAFE_CHECK(batch > 0, "KvCache: batch must be positive, got ", batch);
  stores_.resize(static_cast<std::size_t>(num_layers_));
}

KvCache::~KvCache() = default;
KvCache::KvCache(KvCache&&) noexcept = default;
KvCache& KvCache::operator=(KvCache&&) noexcept = default;

std::int64_t KvCache::memory_bytes() const {
  std::int64_t total = 0;
  for (const auto& s : stores_) {
    if (s) total += s->memory_bytes();
  }
  return total;
}

at::Tensor KvCache::begin_call(const at::Tensor& valid_new, c10::Device device) {
  KVSAFE_CHECK(valid_new.dim() == 2 && valid_new.size(0) == batch_, "KvCache: valid must be [", batch_, ", n]");
  const at::Tensor valid = valid_new.to(device, at::kBool);
  if (!lengths_.defined()) lengths_ = at::zeros({batch_}, at::TensorOptions().dtype(at::kLong).device(device));
  const at::Tensor as_long = valid.to(at::kLong);
  const at::Tensor counted = as_long.cumsum(1);
  // A real token's position: the real tokens before it in its sequence. Padding gets 1, as
  // transformers' generate() does (position_ids.masked_fill_(attention_mask == 0, 1)).
  at::Tensor positions = lengths_.unsqueeze(1) + counted - 1;
  positions = at::where(valid, positions, at::ones_like(positions));
  lengths_ = lengths_ + counted.select(1, counted.size(1) - 1);
  valid_ = valid_.defined() ? at::cat({valid_, valid}, 1) : valid;
  positions_ = positions_.defined() ? at::cat({positions_, positions}, 1) : positions;
  tokens_before_ = tokens_;
  tokens_ += valid.size(1);
  return positions;
}

void KvCache::enable_truncation() {
  KVSAFE_CHECK(tokens_ == 0, "KvCache::enable_truncation must come before the first forward call (the cache holds ",
               tokens_, " slots)");
  truncatable_ = true;
}

void KvCache::truncate(std::int64_t tokens) {
  KVSAFE_CHECK(tokens >= 0 && tokens <= tokens_, "KvCache::truncate: ", tokens, " slots asked, the cache holds ",
               tokens_);
  if (tokens == tokens_) return;
  for (std::size_t layer = 0; layer < stores_.size(); ++layer) {
    if (!stores_[layer]) continue;
    KVSAFE_CHECK(stores_[layer]->truncate(tokens), "KvCache::truncate: layer ", layer, "'s KV store cannot truncate",
                 truncatable_ ? "" : " (call KvCache::enable_truncation before the first forward call)");
  }
  if (tokens == 0) {
    valid_ = at::Tensor();
    positions_ = at::Tensor();
    lengths_ = at::Tensor();
  } else {
    valid_ = valid_.narrow(1, 0, tokens);
    positions_ = positions_.narrow(1, 0, tokens);
    lengths_ = valid_.sum(1, /*keepdim=*/false, at::kLong);
  }
  tokens_ = tokens;
  tokens_before_ = tokens;
}

KvLayerStore& KvCache::store(std::int64_t layer, const KvStoreShape& shape) {
  KVSAFE_ASSERT(layer >= 0 && layer < num_layers_);
  auto& slot = stores_[static_cast<std::size_t>(layer)];
  if (!slot) {
    const bool use_path = path_ != nullptr && path_->placement() == KvPlacement::kCache;
    KvStoreShape with_hint = shape;
    with_hint.expected_tokens = std::max(shape.expected_tokens, expected_tokens_);
    with_hint.truncatable = shape.truncatable || truncatable_;
    slot = use_path ? path_->make_store(with_hint) : std::make_unique<ExactKvStore>(with_hint);
    KVSAFE_ASSERT(slot != nullptr, "KvPath::make_store returned null");
  }
  return *slot;
}

}  // namespace kvsafe::engine
