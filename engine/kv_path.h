#pragma once
// The KV path: where a KV-cache quantizer (kernels/, issue 5) plugs into the transformer.
// Every key and value on its way into attention passes through a KvPath, per layer, in one of
// two placements (DESIGN.md "The paper's protocol"):
//
//  - KvPlacement::kProjection (the paper's hooks, core/quantization.py): KvPath::project()
//    receives the k_proj / v_proj output of one forward call, [batch, tokens, kv_heads *
//    head_dim], before RoPE (and before OLMo-2's k_norm), the current token included, and
//    returns what replaces it. Statistics may span the whole call, batch and padding too,
//    as the paper's hooks do; KvProjectionCall::valid says which slots are real.
//  - KvPlacement::kCache (serving systems): the post-RoPE keys and values of each call are
//    appended to a per-layer KvLayerStore made by KvPath::make_store(); the store keeps them
//    however it likes (packed, quantized, with a residual window) and returns the layer's
//    whole history as attention must read it, [batch, kv_heads, tokens, head_dim], with the
//    valid-token mask. prefill_attention() kExact: a prompt's own prefill attends to its exact
//    K/V while the store still receives them (vLLM); kQuantized: every read goes through the
//    store. A store must never let a quantization group mix sequences or padding slots.
//    KvPath::keys_before_rope() true (KVQuant's pre-RoPE key quantization): the store
//    receives and returns keys BEFORE RoPE (values as always), and attention applies RoPE to
//    the whole key history it reads back, each slot at its own position (KvCache::positions()).
//
// With no KvPath (nullptr) the cache stores exact K/V; IdentityProjectionPath and
// ExactCachePath below are the no-quantizer paths of each placement, and both give exactly
// the plain model's logits (tests/engine/forward_kv_path_test.cpp).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

namespace kvsafe::engine {

enum class KvPlacement { kProjection, kCache };
enum class KvPrefillAttention { kExact, kQuantized };
enum class KvSide { kKey, kValue };

// One projection hook call.
struct KvProjectionCall {
  std::int64_t layer = 0;      // decoder layer index
  KvSide side = KvSide::kKey;  // k_proj or v_proj output
  at::Tensor valid{};          // bool [batch, tokens]: real tokens of this call (false = padding)
  bool prefill = false;        // the first call of these sequences (the prompt)
  bool fused_qkv = false;      // the checkpoint fuses q/k/v (Phi-3): the paper hooks the fused output
};

// The geometry of one layer's cache.
struct KvStoreShape {
  std::int64_t layer = 0;            // decoder layer index
  std::int64_t batch = 0;            // sequences
  std::int64_t kv_heads = 0;         // key/value heads
  std::int64_t head_dim = 0;         // per-head width
  c10::ScalarType dtype{};           // of the K/V tensors attention uses
  c10::Device device{c10::kCPU};     // where they live
  std::int64_t expected_tokens = 0;  // slots the cache expects to hold in all (a hint for the first allocation), or 0
  // The cache may be truncated (KvCache::enable_truncation): a store that needs more state to
  // truncate exactly (a quantized store's exact inputs) keeps it only when this is set.
  bool truncatable = false;
};

// What a store hands to attention after an append.
struct KvRead {
  at::Tensor keys{};                                          // [batch, kv_heads, tokens, head_dim], every token so far
  at::Tensor values{};                                        // [batch, kv_heads, tokens, head_dim]
  double key_mse = std::numeric_limits<double>::quiet_NaN();  // this append's quantization MSE, NaN if none
  double value_mse = std::numeric_limits<double>::quiet_NaN();  // same for values
};

// One layer's KV cache contents for one batch of sequences (placement kCache).
class KvLayerStore {
 public:
  virtual ~KvLayerStore() = default;
  // Appends this call's post-RoPE keys (pre-RoPE when the path's keys_before_rope()) and
  // values, [batch, kv_heads, new_tokens, head_dim]; `valid`: bool [batch, new_tokens].
  // Returns the whole history (earlier tokens first) as attention must use it (keys still
  // pre-RoPE when they came so). Slots appended as padding stay padding forever.
  virtual KvRead append(const at::Tensor& keys, const at::Tensor& values, const at::Tensor& valid) = 0;
  // Tokens (slots, padding included) held.
  virtual std::int64_t tokens() const = 0;
  // Drops the slots from `tokens` on (0 <= tokens <= tokens()), leaving the store exactly as
  // if only the first `tokens` slots had been appended (speculative decoding's rollback of
  // rejected proposals, engine/speculative_generator.h). Returns false, changing nothing,
  // when the store cannot do that (the default; a quantized store made without
  // KvStoreShape::truncatable). NOTE: a store that wraps another must forward this.
  virtual bool truncate(std::int64_t /*tokens*/) { return false; }
  // Bytes the stored form takes (what a serving system would hold).
  virtual std::int64_t memory_bytes() const = 0;
};

// Exact storage, preallocated and grown by doubling so that decode steps copy only the new
// token. The default store, and the building block of quantized stores that keep a window
// exact.
class ExactKvStore final : public KvLayerStore {
 public:
  explicit ExactKvStore(const KvStoreShape& shape);
  KvRead append(const at::Tensor& keys, const at::Tensor& values, const at::Tensor& valid) override;
  std::int64_t tokens() const override { return tokens_; }
  // O(1): the dropped slots' rows are simply overwritten by later appends.
  bool truncate(std::int64_t tokens) override;
  std::int64_t memory_bytes() const override;
  // Slots allocated (tokens() of them in use).
  std::int64_t capacity() const { return keys_.defined() ? keys_.size(2) : 0; }

 private:
  KvStoreShape shape_;
  at::Tensor keys_;    // [batch, kv_heads, capacity, head_dim]
  at::Tensor values_;  // [batch, kv_heads, capacity, head_dim]
  std::int64_t tokens_ = 0;
};

// The interface a quantizer implements. One KvPath may serve many generations; stores are
// per generation (KvCache makes one per layer).
class KvPath {
 public:
  virtual ~KvPath() = default;
  virtual KvPlacement placement() const = 0;
  // Meaningful for placement kCache only.
  virtual KvPrefillAttention prefill_attention() const { return KvPrefillAttention::kExact; }
  // Meaningful for placement kCache only: the store receives keys before RoPE (after
  // OLMo-2's k_norm) and returns them so; the engine rotates what it reads. Default: false
  // (post-RoPE keys). NOTE: a KvPath that wraps another must forward this.
  virtual bool keys_before_rope() const { return false; }
  // Placement kProjection: x is [batch, tokens, kv_heads * head_dim] (projection output, bias
  // included). Returns a tensor of the same shape, dtype and device. Sets *mse (when not
  // null) to this call's quantization MSE if it computes one. Default: x unchanged.
  virtual at::Tensor project(const at::Tensor& x, const KvProjectionCall& call, double* mse);
  // Placement kCache: a new, empty store for one layer. Default: ExactKvStore.
  virtual std::unique_ptr<KvLayerStore> make_store(const KvStoreShape& shape);
};

// The no-quantizer paths of each placement (tests, and `--kv none`).
class IdentityProjectionPath final : public KvPath {
 public:
  KvPlacement placement() const override { return KvPlacement::kProjection; }
};
class ExactCachePath final : public KvPath {
 public:
  explicit ExactCachePath(KvPrefillAttention prefill = KvPrefillAttention::kExact) : prefill_(prefill) {}
  KvPlacement placement() const override { return KvPlacement::kCache; }
  KvPrefillAttention prefill_attention() const override { return prefill_; }

 private:
  KvPrefillAttention prefill_;
};

// Per-call quantization MSE, as the paper records it (one entry per hook call).
struct KvCallRecord {
  std::int64_t layer = 0;      // decoder layer
  KvSide side = KvSide::kKey;  // keys or values
  std::int64_t tokens = 0;     // slots in the call (batch * tokens for projection; new tokens for cache)
  double mse = 0.0;            // mean squared error of what attention used vs the exact tensor
};
struct KvCallLog {
  std::vector<KvCallRecord> records{};  // in call order
};

}  // namespace kvsafe::engine
