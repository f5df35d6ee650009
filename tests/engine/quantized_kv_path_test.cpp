// make_kv_path (engine/quantized_kv_path.h) on stories260K, checked against the kernels'
// formulas applied by hand to what the model really produced (activation capture):
// projection placement: the keys/values attention used are exactly paper_fake_quantize of
// the exact projections of that call; protected layers stay exact; the per-call MSE log
// is filled. Cache placement: the prefill's stored keys are exactly fake_quantize_cache of
// the post-RoPE keys, padding excluded; prefill_attention exact keeps the prompt's logits
// exact while later steps change; the stored form is smaller than the exact cache. Pre-RoPE
// keys (KVQuant): the stored keys are fake_quantize_cache of the pre-RoPE keys, rotated by
// the test's own RoPE at each token's position, and differ from post-RoPE quantization.

#include <gtest/gtest.h>

#include "engine/activation_capture.h"
#include "engine/quantized_kv_path.h"
#include "kernels/kv_quant.h"
#include "tests/engine/forward_test_util.h"

namespace kvsafe::engine {
namespace {

using kernels::parse_kv_label;

class QuantizedKvPathTest : public test::StoriesModelTest {
 protected:
  static test::PaddedBatch batch() {
    return test::left_pad({{1, 403, 407, 261, 378}, {1, 385, 328, 432, 317, 284, 316, 261}}, 0);
  }
  // Every position of both rows, for capture.
  static CaptureRequest capture_all(std::vector<CaptureKind> kinds) {
    return {.layers = {}, .kinds = std::move(kinds), .positions = {{0, 1, 2, 3, 4}, {0, 1, 2, 3, 4, 5, 6, 7}}};
  }
};

// transformers' rotate_half RoPE (modeling_llama.py, default rope_type), float32 as there:
// x [1, heads, n, dim] at positions 0..n-1.
at::Tensor rope_reference(const at::Tensor& x, double theta) {
  const std::int64_t n = x.size(2), dim = x.size(3), half = dim / 2;
  const at::Tensor inv_freq = 1.0 / at::pow(theta, at::arange(0, dim, 2, at::kLong).to(at::kFloat) / dim);
  const at::Tensor freqs = at::arange(n, at::kLong).to(at::kFloat).unsqueeze(1) * inv_freq.unsqueeze(0);
  const at::Tensor emb = at::cat({freqs, freqs}, -1);  // [n, dim]
  const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * emb.cos() + rotated * emb.sin();
}

TEST_F(QuantizedKvPathTest, NoneGivesNoPathAndPreRopeNeedsTheCache) {
  EXPECT_EQ(make_kv_path(parse_kv_label("none")), nullptr);
  EXPECT_NE(make_kv_path(parse_kv_label("int4-ptok-asym")), nullptr);
  EXPECT_FALSE(make_kv_path(parse_kv_label("int4-ptok-asym-cache"))->keys_before_rope());
  kernels::KvQuantSpec spec = parse_kv_label("int4-ptok-asym-cache");
  spec.pre_rope = true;
  auto path = make_kv_path(spec);
  ASSERT_NE(path, nullptr);
  EXPECT_TRUE(path->keys_before_rope());
  // Projection hooks are pre-RoPE already: canonicalize drops the flag.
  spec = parse_kv_label("int4-ptok-asym");
  spec.pre_rope = true;
  path = make_kv_path(spec);
  ASSERT_NE(path, nullptr);
  EXPECT_EQ(path->placement(), KvPlacement::kProjection);
  EXPECT_FALSE(path->keys_before_rope());
}

TEST_F(QuantizedKvPathTest, ProjectionPlacementIsThePaperFormulaOnTheWholeCall) {
  // Per-token asymmetric statistics cover each slot of the call, padding included, as the
  // paper's hooks do; the prefill call is what capture records at every position.
  const auto spec = parse_kv_label("int4-ptok-asym");
  auto path = make_kv_path(spec);
  ASSERT_NE(path, nullptr);
  EXPECT_EQ(path->placement(), KvPlacement::kProjection);
  const auto b = batch();
  KvCache cache(*model_, 2, path.get());
  ActivationCapture capture(
      capture_all({CaptureKind::kKeyExact, CaptureKind::kKeyUsed, CaptureKind::kValueExact, CaptureKind::kValueUsed}));
  KvCallLog log;
  model_->forward(b.tokens, b.valid, cache, {.capture = &capture, .kv_log = &log});
  for (std::int64_t layer = 0; layer < model_->config().num_layers; ++layer) {
    const at::Tensor k = capture.get(CaptureKind::kKeyExact, layer);
    const at::Tensor v = capture.get(CaptureKind::kValueExact, layer);
    // Per-token statistics are row-local, so the captured real rows suffice.
    EXPECT_TRUE(at::equal(capture.get(CaptureKind::kKeyUsed, layer),
                          kernels::paper_fake_quantize(k, 4, false, kernels::Granularity::kPerToken, 0)))
        << "layer " << layer;
    EXPECT_TRUE(at::equal(capture.get(CaptureKind::kValueUsed, layer),
                          kernels::paper_fake_quantize(v, 4, false, kernels::Granularity::kPerToken, 0)))
        << "layer " << layer;
    EXPECT_FALSE(at::equal(capture.get(CaptureKind::kKeyUsed, layer), k));
  }
  ASSERT_EQ(log.records.size(), static_cast<std::size_t>(2 * model_->config().num_layers));
  for (const auto& record : log.records) EXPECT_GT(record.mse, 0.0);
}

TEST_F(QuantizedKvPathTest, ProtectedLayersStayExact) {
  auto path = make_kv_path(parse_kv_label("int2-ptok-asym+fp16[0,2]"));
  const auto b = batch();
  KvCache cache(*model_, 2, path.get());
  ActivationCapture capture(capture_all({CaptureKind::kKeyExact, CaptureKind::kKeyUsed}));
  KvCallLog log;
  model_->forward(b.tokens, b.valid, cache, {.capture = &capture, .kv_log = &log});
  for (std::int64_t layer = 0; layer < model_->config().num_layers; ++layer) {
    const bool same = at::equal(capture.get(CaptureKind::kKeyUsed, layer), capture.get(CaptureKind::kKeyExact, layer));
    EXPECT_EQ(same, layer == 0 || layer == 2) << "layer " << layer;
  }
  for (const auto& record : log.records) EXPECT_TRUE(record.layer != 0 && record.layer != 2) << record.layer;
}

TEST_F(QuantizedKvPathTest, OneSideAtSixteenBitsIsLeftExact) {
  // The paper's K/V asymmetry analysis: keys only (value_bits 16) and values only (bits 16).
  // The exact side is what the model produced; the other is the paper's formula; only the
  // quantized side logs an MSE. In both placements.
  for (const char* label : {"int4v16-ptok-asym", "int16v4-ptok-asym", "int4v16-ptok-asym-cache"}) {
    const kernels::KvQuantSpec spec = parse_kv_label(label);
    const bool keys_quantized = spec.bits != 16;
    auto path = make_kv_path(spec);
    ASSERT_NE(path, nullptr) << label;
    const auto b = batch();
    KvCache cache(*model_, 2, path.get());
    ActivationCapture capture(capture_all(
        {CaptureKind::kKeyExact, CaptureKind::kKeyUsed, CaptureKind::kValueExact, CaptureKind::kValueUsed}));
    KvCallLog log;
    model_->forward(b.tokens, b.valid, cache, {.capture = &capture, .kv_log = &log});
    for (std::int64_t layer = 0; layer < model_->config().num_layers; ++layer) {
      const at::Tensor k = capture.get(CaptureKind::kKeyExact, layer);
      const at::Tensor v = capture.get(CaptureKind::kValueExact, layer);
      const at::Tensor k_used = capture.get(CaptureKind::kKeyUsed, layer);
      const at::Tensor v_used = capture.get(CaptureKind::kValueUsed, layer);
      EXPECT_EQ(at::equal(k_used, k), !keys_quantized) << label << " layer " << layer;
      EXPECT_EQ(at::equal(v_used, v), keys_quantized) << label << " layer " << layer;
      if (spec.placement == kernels::Placement::kProjection) {
        const at::Tensor& side = keys_quantized ? k : v;
        EXPECT_TRUE(at::equal(keys_quantized ? k_used : v_used,
                              kernels::paper_fake_quantize(side, 4, false, kernels::Granularity::kPerToken, 0)))
            << label << " layer " << layer;
      }
    }
    if (spec.placement == kernels::Placement::kProjection) {
      ASSERT_EQ(log.records.size(), static_cast<std::size_t>(model_->config().num_layers)) << label;
      for (const auto& record : log.records) {
        EXPECT_EQ(record.side, keys_quantized ? KvSide::kKey : KvSide::kValue) << label;
      }
    }
  }
}

TEST_F(QuantizedKvPathTest, CachePlacementStoresThePackedFormulaPerSequence) {
  const auto spec = parse_kv_label("int4-g8-asym-cache");
  auto path = make_kv_path(spec);
  ASSERT_EQ(path->placement(), KvPlacement::kCache);
  EXPECT_EQ(path->prefill_attention(), KvPrefillAttention::kExact);
  const auto b = batch();
  KvCache cache(*model_, 2, path.get());
  ActivationCapture capture(capture_all({CaptureKind::kKeyExact, CaptureKind::kKeyUsed}));
  model_->forward(b.tokens, b.valid, cache, {.capture = &capture});
  const auto& c = model_->config();
  for (std::int64_t layer = 0; layer < c.num_layers; ++layer) {
    // Captured rows are [points, kv_heads * head_dim] in (row, position) order; rebuild one
    // sequence at a time as [1, kv_heads, tokens, head_dim] and quantize it alone.
    const at::Tensor exact = capture.get(CaptureKind::kKeyExact, layer);
    const at::Tensor used = capture.get(CaptureKind::kKeyUsed, layer);
    const kernels::KvSideSpec side = kernels::resolve_side(spec, kernels::KvSide::kKey, static_cast<int>(layer));
    std::int64_t offset = 0;
    for (const std::int64_t length : {5, 8}) {
      const at::Tensor seq =
          exact.narrow(0, offset, length).view({1, length, c.num_kv_heads, c.head_dim}).transpose(1, 2).contiguous();
      const at::Tensor expected = kernels::fake_quantize_cache(seq, at::Tensor(), side)
                                      .transpose(1, 2)
                                      .reshape({length, c.num_kv_heads * c.head_dim});
      EXPECT_TRUE(at::equal(used.narrow(0, offset, length), expected)) << "layer " << layer << " row length " << length;
      offset += length;
    }
  }
  KvCache plain(*model_, 2, nullptr);
  model_->forward(b.tokens, b.valid, plain, {});
  EXPECT_LT(cache.memory_bytes(), plain.memory_bytes() / 2);
}

TEST_F(QuantizedKvPathTest, CachePrefillExactKeepsPromptLogitsAndDecodeChanges) {
  auto exact_prefill = make_kv_path(parse_kv_label("int2-ptok-asym-cache"));
  auto quantized_prefill = make_kv_path(parse_kv_label("int2-ptok-asym-cache-qprefill"));
  const auto b = batch();
  const auto run = [&](KvPath* path) {
    KvCache cache(*model_, 2, path);
    std::vector<at::Tensor> out{model_->forward(b.tokens, b.valid, cache, {.logits = LogitsMode::kAll})};
    out.push_back(model_->forward(at::full({2, 1}, 432, at::kLong), at::Tensor(), cache, {}));
    return out;
  };
  const auto plain = run(nullptr);
  const auto exact = run(exact_prefill.get());
  const auto quantized = run(quantized_prefill.get());
  const at::Tensor mask = b.valid.unsqueeze(-1).expand_as(plain[0]);
  EXPECT_TRUE(at::equal(exact[0].masked_select(mask), plain[0].masked_select(mask)));
  EXPECT_FALSE(at::equal(quantized[0].masked_select(mask), plain[0].masked_select(mask)));
  EXPECT_FALSE(at::equal(exact[1], plain[1]));
}

TEST_F(QuantizedKvPathTest, PreRopeCacheQuantizesKeysBeforeRopeAndRotatesOnRead) {
  const auto spec = parse_kv_label("int4-g8-asym-cache-prerope");
  auto pre_path = make_kv_path(spec);
  auto post_path = make_kv_path(parse_kv_label("int4-g8-asym-cache"));
  ASSERT_TRUE(pre_path->keys_before_rope());
  const auto& c = model_->config();
  ASSERT_EQ(c.rotary_dim, c.head_dim);
  const auto b = batch();
  // The pre-RoPE keys: the plain model's k_proj outputs. The exact prefill of the pre-RoPE
  // path computes the same layer inputs, so its store receives these very bits.
  ActivationCapture exact_capture(capture_all({CaptureKind::kKeyExact}));
  KvCache plain(*model_, 2, nullptr);
  const at::Tensor plain_logits = model_->forward(b.tokens, b.valid, plain, {.capture = &exact_capture});
  ActivationCapture capture(capture_all({CaptureKind::kKeyExact, CaptureKind::kKeyUsed}));
  KvCache cache(*model_, 2, pre_path.get());
  EXPECT_TRUE(at::equal(model_->forward(b.tokens, b.valid, cache, {.capture = &capture}), plain_logits));
  for (std::int64_t layer = 0; layer < c.num_layers; ++layer) {
    const at::Tensor pre_rope = exact_capture.get(CaptureKind::kKeyExact, layer);
    const at::Tensor post_rope = capture.get(CaptureKind::kKeyExact, layer);  // cache placement: post-RoPE
    const at::Tensor used = capture.get(CaptureKind::kKeyUsed, layer);        // rotated dequantized keys
    const kernels::KvSideSpec side = kernels::resolve_side(spec, kernels::KvSide::kKey, static_cast<int>(layer));
    std::int64_t offset = 0;
    for (const std::int64_t length : {5, 8}) {
      const auto as_heads = [&](const at::Tensor& rows) {
        return rows.narrow(0, offset, length)
            .view({1, length, c.num_kv_heads, c.head_dim})
            .transpose(1, 2)
            .contiguous();
      };
      const auto as_rows = [&](const at::Tensor& heads) {
        return heads.transpose(1, 2).reshape({length, c.num_kv_heads * c.head_dim});
      };
      const at::Tensor seq_pre = as_heads(pre_rope);
      const at::Tensor seq_used = used.narrow(0, offset, length);
      // The test's RoPE reproduces the engine's on exact keys (checks the oracle itself).
      ASSERT_LT(test::max_abs_diff(as_rows(rope_reference(seq_pre, c.rope_theta)), post_rope.narrow(0, offset, length)),
                1e-5);
      const at::Tensor expected =
          as_rows(rope_reference(kernels::fake_quantize_cache(seq_pre, at::Tensor(), side), c.rope_theta));
      EXPECT_LT(test::max_abs_diff(seq_used, expected), 1e-5) << "layer " << layer << " row length " << length;
      const at::Tensor post_quantized = as_rows(kernels::fake_quantize_cache(as_heads(post_rope), at::Tensor(), side));
      EXPECT_GT(test::max_abs_diff(seq_used, post_quantized), 1e-3) << "layer " << layer << " row length " << length;
      offset += length;
    }
  }
  // Decode reads the store: pre-RoPE and post-RoPE quantization give different logits.
  KvCache post_cache(*model_, 2, post_path.get());
  model_->forward(b.tokens, b.valid, post_cache, {});
  const at::Tensor next = at::full({2, 1}, 432, at::kLong);
  const at::Tensor pre_step = model_->forward(next, at::Tensor(), cache, {});
  const at::Tensor post_step = model_->forward(next, at::Tensor(), post_cache, {});
  const at::Tensor plain_step = model_->forward(next, at::Tensor(), plain, {});
  EXPECT_GT(test::max_abs_diff(pre_step, post_step), 1e-4);
  EXPECT_GT(test::max_abs_diff(pre_step, plain_step), 1e-4);
}

}  // namespace
}  // namespace kvsafe::engine
