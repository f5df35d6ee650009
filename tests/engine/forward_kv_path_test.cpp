// The KV path (engine/kv_path.h) on stories260K: without a quantizer both placements give the
// plain model's logits bit for bit; a stand-in quantizer (rounding) shows what each placement
// sees and changes: projection hooks get [batch, tokens, kv_heads * head_dim] of the whole
// call with its valid mask; cache stores get post-RoPE [batch, kv_heads, new, head_dim];
// prefill_attention exact keeps the prompt's own logits exact. A cache that keeps keys before
// RoPE (KvPath::keys_before_rope), stored exactly, gives the plain model's logits: the engine
// rotates each slot at its own position, left padding included. Also activation capture.

#include <gtest/gtest.h>

#include "engine/activation_capture.h"
#include "tests/engine/forward_test_util.h"

namespace kvsafe::engine {
namespace {

at::Tensor round_to_grid(const at::Tensor& x) {
  return at::round(x / 0.25) * 0.25;
}

// Projection placement: rounds, records every call.
class RoundingProjection final : public KvPath {
 public:
  KvPlacement placement() const override { return KvPlacement::kProjection; }
  at::Tensor project(const at::Tensor& x, const KvProjectionCall& call, double* mse) override {
    calls.push_back({call.layer, call.side, x.sizes().vec(), call.valid.sizes().vec(), call.prefill});
    const at::Tensor y = round_to_grid(x);
    if (mse != nullptr) *mse = (y - x).pow(2).mean().item<double>();
    return y;
  }
  struct Call {
    std::int64_t layer;
    KvSide side;
    std::vector<std::int64_t> shape, valid_shape;
    bool prefill;
  };
  std::vector<Call> calls;
};

// Cache placement: stores rounded K/V (exactly, in an ExactKvStore underneath).
class RoundingStore final : public KvLayerStore {
 public:
  explicit RoundingStore(const KvStoreShape& shape) : exact_(shape) {}
  KvRead append(const at::Tensor& keys, const at::Tensor& values, const at::Tensor& valid) override {
    EXPECT_EQ(keys.dim(), 4);
    EXPECT_EQ(valid.size(0), keys.size(0));
    EXPECT_EQ(valid.size(1), keys.size(2));
    const at::Tensor k = round_to_grid(keys), v = round_to_grid(values);
    KvRead read = exact_.append(k, v, valid);
    read.key_mse = (k - keys).pow(2).mean().item<double>();
    read.value_mse = (v - values).pow(2).mean().item<double>();
    return read;
  }
  std::int64_t tokens() const override { return exact_.tokens(); }
  std::int64_t memory_bytes() const override { return exact_.memory_bytes(); }

 private:
  ExactKvStore exact_;
};
class RoundingCache final : public KvPath {
 public:
  explicit RoundingCache(KvPrefillAttention prefill) : prefill_(prefill) {}
  KvPlacement placement() const override { return KvPlacement::kCache; }
  KvPrefillAttention prefill_attention() const override { return prefill_; }
  std::unique_ptr<KvLayerStore> make_store(const KvStoreShape& shape) override {
    ++stores;
    return std::make_unique<RoundingStore>(shape);
  }
  int stores = 0;

 private:
  KvPrefillAttention prefill_;
};

// Cache placement with pre-RoPE keys stored exactly (ExactKvStore): the store sees unrotated
// keys, so the plain model's logits come back only if attention rotates every slot it reads.
class ExactPreRopeCache final : public KvPath {
 public:
  explicit ExactPreRopeCache(KvPrefillAttention prefill) : prefill_(prefill) {}
  KvPlacement placement() const override { return KvPlacement::kCache; }
  KvPrefillAttention prefill_attention() const override { return prefill_; }
  bool keys_before_rope() const override { return true; }

 private:
  KvPrefillAttention prefill_;
};

class KvPathTest : public test::StoriesModelTest {
 protected:
  // Prefill logits [2, n, vocab] then 3 decode steps' [2, vocab], concatenated per row.
  static std::vector<at::Tensor> run(KvPath* path, KvCallLog* log = nullptr) {
    const auto batch = test::left_pad({{1, 403, 407, 261, 378}, {1, 385, 328, 432, 317, 284, 316, 261}}, 0);
    KvCache cache(*model_, 2, path);
    std::vector<at::Tensor> out;
    out.push_back(model_->forward(batch.tokens, batch.valid, cache, {.logits = LogitsMode::kAll, .kv_log = log}));
    for (const std::int64_t t : {432, 383, 286}) {
      out.push_back(model_->forward(at::full({2, 1}, t, at::kLong), at::Tensor(), cache, {.kv_log = log}));
    }
    return out;
  }
};

void expect_identical(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << "call " << i;
}

TEST_F(KvPathTest, NoQuantizerPlacementsEqualThePlainModel) {
  const auto plain = run(nullptr);
  IdentityProjectionPath projection;
  ExactCachePath cache_exact(KvPrefillAttention::kExact);
  ExactCachePath cache_quantized(KvPrefillAttention::kQuantized);
  expect_identical(run(&projection), plain);
  expect_identical(run(&cache_exact), plain);
  expect_identical(run(&cache_quantized), plain);
}

TEST_F(KvPathTest, ProjectionHooksSeeTheWholeCallBeforeRope) {
  RoundingProjection path;
  KvCallLog log;
  const auto plain = run(nullptr);
  const auto quantized = run(&path, &log);
  const auto& c = model_->config();
  ASSERT_EQ(path.calls.size(), static_cast<std::size_t>(4 * 2 * c.num_layers));  // 4 calls, K and V, each layer
  const auto& first = path.calls.front();
  EXPECT_EQ(first.layer, 0);
  EXPECT_EQ(first.side, KvSide::kKey);
  EXPECT_EQ(first.shape, (std::vector<std::int64_t>{2, 8, c.num_kv_heads * c.head_dim}));
  EXPECT_EQ(first.valid_shape, (std::vector<std::int64_t>{2, 8}));
  EXPECT_TRUE(first.prefill);
  EXPECT_EQ(path.calls[1].side, KvSide::kValue);
  EXPECT_EQ(path.calls.back().shape, (std::vector<std::int64_t>{2, 1, c.num_kv_heads * c.head_dim}));
  EXPECT_FALSE(path.calls.back().prefill);
  EXPECT_EQ(log.records.size(), path.calls.size());
  EXPECT_GT(log.records.front().mse, 0.0);
  EXPECT_EQ(log.records.front().tokens, 16);
  EXPECT_GT(test::max_abs_diff(quantized[0], plain[0]), 1e-3);
}

TEST_F(KvPathTest, CachePlacementAndPrefillAttention) {
  const auto plain = run(nullptr);
  RoundingCache exact_prefill(KvPrefillAttention::kExact);
  KvCallLog log;
  const auto a = run(&exact_prefill, &log);
  EXPECT_EQ(exact_prefill.stores, static_cast<int>(model_->config().num_layers));
  EXPECT_TRUE(at::equal(a[0], plain[0])) << "prefill attends to exact K/V (vLLM)";
  EXPECT_GT(test::max_abs_diff(a[1], plain[1]), 1e-3) << "decode reads the quantized cache";
  EXPECT_EQ(log.records.size(), static_cast<std::size_t>(4 * 2 * model_->config().num_layers));
  RoundingCache quantized_prefill(KvPrefillAttention::kQuantized);
  const auto b = run(&quantized_prefill);
  EXPECT_GT(test::max_abs_diff(b[0], plain[0]), 1e-3) << "prefill reads the quantized cache";
}

TEST_F(KvPathTest, PreRopeKeyCacheRotatesEachSlotAtItsOwnPosition) {
  // The rows are left-padded by 3 and 0 slots, so one slot index holds different positions;
  // kQuantized makes the prefill read the store too. Rotation on read is a different
  // rounding of the same product as rotation on write: equal to float rounding.
  const auto plain = run(nullptr);
  for (const auto prefill : {KvPrefillAttention::kExact, KvPrefillAttention::kQuantized}) {
    ExactPreRopeCache path(prefill);
    const auto pre = run(&path);
    ASSERT_EQ(pre.size(), plain.size());
    for (std::size_t i = 0; i < pre.size(); ++i) {
      EXPECT_LT(test::max_abs_diff(pre[i], plain[i]), 1e-5)
          << "call " << i << (prefill == KvPrefillAttention::kExact ? " exact" : " quantized") << " prefill";
    }
  }
}

TEST_F(KvPathTest, ExpectedTokensAreAllocatedOnceAndChangeNothing) {
  // The generator tells the cache prompt + max_new_tokens; the exact store then never grows
  // (growing copies the whole history), and the logits are those of a cache that doubled.
  const at::Tensor prompt = at::tensor({1, 403, 407, 261, 378}, at::kLong).view({1, 5});
  const auto decode = [&](KvCache& cache, std::vector<std::int64_t>& capacities) {
    std::vector<at::Tensor> logits{model_->forward(prompt, at::Tensor(), cache)};
    for (std::int64_t step = 0; step < 80; ++step) {  // past the first growth (5 + 64 slots)
      logits.push_back(model_->forward(at::full({1, 1}, 300 + step, at::kLong), at::Tensor(), cache));
      const auto* store = dynamic_cast<const ExactKvStore*>(&cache.store(0, {}));
      capacities.push_back(store != nullptr ? store->capacity() : -1);
    }
    return logits;
  };
  KvCache growing(*model_, 1);
  std::vector<std::int64_t> grown;
  const std::vector<at::Tensor> want = decode(growing, grown);
  EXPECT_EQ(grown.front(), 69);
  EXPECT_EQ(grown.back(), 138);
  KvCache reserved(*model_, 1);
  reserved.expect_tokens(85);
  std::vector<std::int64_t> held;
  expect_identical(decode(reserved, held), want);
  for (const std::int64_t capacity : held) EXPECT_EQ(capacity, 85);
}

TEST_F(KvPathTest, CaptureSelectsPositionsIndependentOfPadding) {
  const std::vector<TokenId> a = {1, 403, 407, 261, 378};
  const std::vector<TokenId> b = {1, 385, 328, 432, 317, 284, 316, 261};
  const CaptureRequest request{
      .layers = {2},
      .kinds = {CaptureKind::kResidual, CaptureKind::kAttentionOutput, CaptureKind::kKeyExact, CaptureKind::kKeyUsed},
      .positions = {{1, 3}, {0}}};
  ActivationCapture together(request);
  const auto batch = test::left_pad({a, b}, 0);
  KvCache cache(*model_, 2);
  const at::Tensor with = model_->forward(batch.tokens, batch.valid, cache, {.capture = &together});
  ASSERT_EQ(together.points(), (std::vector<CapturePoint>{{0, 1}, {0, 3}, {1, 0}}));
  const at::Tensor residual = together.get(CaptureKind::kResidual, 2);
  ASSERT_EQ(residual.sizes(), (std::vector<std::int64_t>{3, model_->config().hidden_size}));
  EXPECT_EQ(together.get(CaptureKind::kAttentionOutput, 2).size(0), 3);
  EXPECT_TRUE(at::equal(together.get(CaptureKind::kKeyExact, 2), together.get(CaptureKind::kKeyUsed, 2)));
  EXPECT_FALSE(together.get(CaptureKind::kResidual, 1).defined());

  // Row 0 alone, unpadded: the same rows.
  ActivationCapture alone({.layers = {2}, .kinds = {CaptureKind::kResidual}, .positions = {{1, 3}}});
  KvCache single(*model_, 1);
  const auto one = test::left_pad({a});
  model_->forward(one.tokens, one.valid, single, {.capture = &alone});
  EXPECT_LT(test::max_abs_diff(alone.get(CaptureKind::kResidual, 2), residual.narrow(0, 0, 2)), 1e-4);

  // Capturing changes nothing.
  KvCache plain_cache(*model_, 2);
  EXPECT_TRUE(at::equal(model_->forward(batch.tokens, batch.valid, plain_cache), with));
  together.clear();
  EXPECT_TRUE(together.points().empty());
}

}  // namespace
}  // namespace kvsafe::engine
