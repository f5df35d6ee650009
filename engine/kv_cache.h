#pragma once
// KvCache: the state of one batch of sequences between forward calls: per layer, the keys
// and values so far (in a KvLayerStore: exact, or whatever the KvPath's quantizer keeps),
// the valid-slot mask, and each sequence's next RoPE position.
//
// Slots are shared by the batch: every call appends the same number of slots to every
// sequence; padding slots (valid = false) are never attended to by real tokens and do not
// advance a sequence's position.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/kv_path.h"

namespace kvsafe::engine {

class Model;

class KvCache {
 public:
  // A cache for `batch` sequences of `model`. `path` (may be null = plain model, exact
  // storage) must outlive the cache.
  KvCache(const Model& model, std::int64_t batch, KvPath* path = nullptr);
  ~KvCache();
  KvCache(KvCache&&) noexcept;
  KvCache& operator=(KvCache&&) noexcept;

  std::int64_t batch() const { return batch_; }
  // Slots held (padding included); 0 before the first forward call.
  std::int64_t tokens() const { return tokens_; }
  KvPath* path() const { return path_; }
  // bool [batch, tokens()]: which slots are real tokens (undefined before the first call).
  const at::Tensor& valid() const { return valid_; }
  // int64 [batch]: each sequence's number of real tokens so far (= its next RoPE position).
  const at::Tensor& lengths() const { return lengths_; }
  // int64 [batch, tokens()]: each slot's RoPE position (padding slots: 1, never attended to).
  const at::Tensor& positions() const { return positions_; }
  // Bytes held by the layer stores.
  std::int64_t memory_bytes() const;
  // The slots this cache will hold in all (prompt + new tokens), so that stores made from now
  // on allocate them at once (KvStoreShape::expected_tokens) instead of growing by doubling:
  // each growth copies the whole history (SmolLM2 batch 32 at 192 tokens: ~0.3 s), and
  // doubling can leave half the memory unused. A hint: more slots still fit.
  void expect_tokens(std::int64_t tokens) { expected_tokens_ = tokens; }

  // ---- rollback (speculative decoding, engine/speculative_generator.h) ----------------
  // Lets truncate() cut quantized stores too: stores made from now on get
  // KvStoreShape::truncatable, and the quantized ones (engine/quantized_kv_path.h) then keep
  // the exact K/V they were given beside their quantized form (twice the memory) to re-derive
  // it. Must be called before the first forward call; throws InputError otherwise. Exact
  // stores truncate without it.
  void enable_truncation();
  // Drops the slots from `tokens` on (0 <= tokens <= tokens(); InputError otherwise): the
  // valid mask, positions and lengths shrink, and every layer's store is cut
  // (KvLayerStore::truncate), so that the cache is what appending only the first `tokens`
  // slots would have left, bit for bit (a quantized store's groups never include dropped
  // slots; FP8's calibrated scale is re-taken only when the cut falls inside the first call).
  // Throws InputError when a store cannot truncate (see enable_truncation); the cache must
  // then be discarded, as some layers may already be cut.
  void truncate(std::int64_t tokens);

  // ---- used by Model::forward --------------------------------------------------------
  // Records a call's valid mask [batch, n] (moved to the cache's device) and returns the
  // positions of its tokens, int64 [batch, n] (padding slots get the position of the next
  // real token, clamped at 0; they never matter).
  at::Tensor begin_call(const at::Tensor& valid_new, c10::Device device);
  // The layer's store, made on first use from the path (or exact).
  KvLayerStore& store(std::int64_t layer, const KvStoreShape& shape);
  // The number of slots before the current call.
  std::int64_t tokens_before_call() const { return tokens_before_; }

 private:
  std::int64_t batch_ = 0;
  std::int64_t num_layers_ = 0;
  KvPath* path_ = nullptr;
  std::vector<std::unique_ptr<KvLayerStore>> stores_;
  at::Tensor valid_;      // bool [batch, tokens]
  at::Tensor lengths_;    // int64 [batch]
  at::Tensor positions_;  // int64 [batch, tokens]
  std::int64_t tokens_ = 0;
  std::int64_t tokens_before_ = 0;
  std::int64_t expected_tokens_ = 0;
  bool truncatable_ = false;  // enable_truncation() was called
};

}  // namespace kvsafe::engine
