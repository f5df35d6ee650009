// Paper mode (placement projection) against the literal formulas of the issue / the
// authors' core/quantization.py, written out as float arithmetic in the test.

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

#include "common/error.h"
#include "kernels/kv_quant.h"

namespace kvsafe::kernels {
namespace {

at::Tensor t3(std::vector<float> v, std::int64_t b, std::int64_t t, std::int64_t c) {
  return at::tensor(v, at::kFloat).view({b, t, c});
}

TEST(PaperMode, PerTensorSymmetricHandExample) {
  const at::Tensor x = t3({1.0f, -2.0f, 0.5f, 4.0f}, 1, 1, 4);
  const at::Tensor out = paper_fake_quantize(x, 3, true, Granularity::kPerTensor, 0);
  // m = 4, qmax = 3, s = m / qmax; q = clamp(round(x / s), -4, 3); x' = q * s.
  const float s = 4.0f / 3.0f;
  const float* o = out.data_ptr<float>();
  const float xs[] = {1.0f, -2.0f, 0.5f, 4.0f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(o[i], std::fmax(-4.0f, std::fmin(3.0f, std::nearbyint(xs[i] / s))) * s);
  // Below 1e-10 the tensor comes back untouched.
  const at::Tensor tiny = t3({1e-11f, -1e-12f}, 1, 1, 2);
  EXPECT_TRUE(paper_fake_quantize(tiny, 3, true, Granularity::kPerTensor, 0).equal(tiny));
}

TEST(PaperMode, AsymmetricPerTokenHandExampleAndScaleClamp) {
  // Row [-1, 0, 1, 2], 2 bits: s = 3/3 = 1, z = clamp(round(0 - (-1)/1), 0, 3) = 1,
  // q = clamp(round(x/s + z), 0, 3) = [0, 1, 2, 3], x' = (q - z) * s = x.
  // Row [5, 5, 5, 5]: s = max(0, 1e-8) = 1e-8, z = clamp(round(-5e8), 0, 3) = 0,
  // q = clamp(round(5e8), 0, 3) = 3, x' = 3e-8: the paper's constant-row collapse.
  const at::Tensor x = t3({-1, 0, 1, 2, 5, 5, 5, 5}, 1, 2, 4);
  const at::Tensor out = paper_fake_quantize(x, 2, false, Granularity::kPerToken, 0);
  const float* o = out.data_ptr<float>();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(o[i], x.data_ptr<float>()[i]);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(o[i], 3.0f * 1e-8f);
}

TEST(PaperMode, RoundsHalfToEvenInTheTensorDtype) {
  // Per-tensor sym 4 bits, max 7: s = 1; 2.5 -> 2, 3.5 -> 4, -0.5 -> -0 (half to even).
  const at::Tensor x = t3({7, 2.5f, 3.5f, -0.5f}, 1, 1, 4);
  const at::Tensor out = paper_fake_quantize(x, 4, true, Granularity::kPerTensor, 0);
  EXPECT_EQ(out.data_ptr<float>()[1], 2.0f);
  EXPECT_EQ(out.data_ptr<float>()[2], 4.0f);
  EXPECT_EQ(out.data_ptr<float>()[3], 0.0f);
  // bf16 in, bf16 out; the division happens in bf16 (x / s rounded to bf16 before round()).
  const at::Tensor xb = x.to(at::kBFloat16);
  const at::Tensor ob = paper_fake_quantize(xb, 4, true, Granularity::kPerTensor, 0);
  EXPECT_EQ(ob.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(ob.to(at::kFloat).equal(out));
}

TEST(PaperMode, PerGroupZeroPadsTheLastGroup) {
  // 6 channels, groups of 4: the second group is [x4, x5, 0, 0].
  const at::Tensor x = t3({1, 2, 3, 4, 10, -10}, 1, 1, 6);
  const at::Tensor out = paper_fake_quantize(x, 2, false, Granularity::kPerGroup, 4);
  const at::Tensor g2 = paper_fake_quantize(t3({10, -10, 0, 0}, 1, 1, 4), 2, false, Granularity::kPerToken, 0);
  EXPECT_TRUE(out.slice(-1, 4, 6).equal(g2.slice(-1, 0, 2)));
  const at::Tensor g1 = paper_fake_quantize(t3({1, 2, 3, 4}, 1, 1, 4), 2, false, Granularity::kPerToken, 0);
  EXPECT_TRUE(out.slice(-1, 0, 4).equal(g1));
}

TEST(PaperMode, PerChannelCouplesTheBatchAndPadding) {
  // The paper's quirk: per_channel statistics span the batch and the padding, so a
  // sequence's result changes when a left-padded sequence joins its batch.
  at::manual_seed(0);
  const at::Tensor a = at::randn({1, 6, 8});
  at::Tensor b = at::randn({1, 6, 8}) * 5;
  b.slice(1, 0, 3).zero_();  // left padding
  const KvSideSpec side{
      .scheme = KvScheme::kInt, .bits = 3, .symmetric = true, .granularity = Granularity::kPerChannel};
  const at::Tensor alone = fake_quantize_projection(a, side);
  const at::Tensor batched = fake_quantize_projection(at::cat({a, b}, 0), side).slice(0, 0, 1);
  EXPECT_FALSE(alone.equal(batched));
}

TEST(PaperMode, KiviSingleTokenFallbackAndFusedQkv) {
  const KvQuantSpec kivi = parse_kv_label("kivi2-r0");
  const KvSideSpec key = resolve_side(kivi, KvSide::kKey, 0);
  const KvSideSpec value = resolve_side(kivi, KvSide::kValue, 0);
  at::manual_seed(1);
  const at::Tensor step = at::randn({2, 1, 64});
  EXPECT_TRUE(
      fake_quantize_projection(step, key).equal(paper_fake_quantize(step, 2, false, Granularity::kPerToken, 0)));
  const at::Tensor prefill = at::randn({2, 5, 64});
  EXPECT_TRUE(fake_quantize_projection(prefill, key)
                  .equal(paper_fake_quantize(prefill, 2, false, Granularity::kPerChannel, 0)));
  const at::Tensor qkv = at::randn({2, 5, 64 + 2 * 32});
  double mse = -1;
  const at::Tensor out = fake_quantize_fused_qkv(qkv, 64, 32, key, value, &mse);
  EXPECT_TRUE(out.slice(-1, 0, 64).equal(qkv.slice(-1, 0, 64)));
  EXPECT_TRUE(out.slice(-1, 64, 96).equal(fake_quantize_projection(qkv.slice(-1, 64, 96), key)));
  EXPECT_TRUE(out.slice(-1, 96, 128).equal(fake_quantize_projection(qkv.slice(-1, 96, 128), value)));
  EXPECT_NEAR(mse, (out.slice(-1, 64, 128) - qkv.slice(-1, 64, 128)).pow(2).mean().item<double>(), 1e-9);
}

TEST(PaperMode, ChannelSelectiveAndOutliers) {
  at::manual_seed(2);
  const at::Tensor x = at::randn({1, 4, 8});
  KvSideSpec side{.scheme = KvScheme::kInt, .bits = 3, .symmetric = true, .granularity = Granularity::kPerTensor};
  side.quantize_channels = {1, 3};
  double mse = 0;
  const at::Tensor out = fake_quantize_projection(x, side, &mse);
  const at::Tensor idx = at::tensor(std::vector<std::int64_t>{1, 3}, at::kLong);
  EXPECT_TRUE(out.index_select(-1, idx).equal(
      paper_fake_quantize(x.index_select(-1, idx), 3, true, Granularity::kPerTensor, 0)));
  for (int c : {0, 2, 4, 5, 6, 7}) EXPECT_TRUE(out.select(-1, c).equal(x.select(-1, c)));
  EXPECT_GT(mse, 0.0);
  KvSideSpec keep{.scheme = KvScheme::kInt, .bits = 3, .symmetric = true, .granularity = Granularity::kPerTensor};
  keep.outliers = {.channels = {0, 7}, .explicit_list = true};
  const at::Tensor kept = fake_quantize_projection(x, keep);
  EXPECT_TRUE(kept.select(-1, 0).equal(x.select(-1, 0)));
  EXPECT_TRUE(kept.select(-1, 7).equal(x.select(-1, 7)));
  EXPECT_EQ(top_k_channels(at::tensor(std::vector<float>{1, 9, 3, 9}), 2), (std::vector<int>{1, 3}));
}

TEST(PaperMode, NanAndInfAreRefused) {
  const KvSideSpec side{.scheme = KvScheme::kInt, .bits = 4, .granularity = Granularity::kPerToken};
  EXPECT_THROW(fake_quantize_projection(t3({1, NAN}, 1, 1, 2), side), InputError);
  EXPECT_THROW(fake_quantize_projection(t3({1, INFINITY}, 1, 1, 2), side), InputError);
}

TEST(PaperMode, Fp8AndLlamaCppRows) {
  const KvSideSpec fp8{.scheme = KvScheme::kFp8E4M3, .bits = 8};
  EXPECT_EQ(fake_quantize_projection(t3({1000, 1.0625f}, 1, 1, 2), fp8).data_ptr<float>()[0], 448.0f);
  const KvSideSpec q8{.scheme = KvScheme::kQ8_0, .bits = 8, .group_size = 32};
  at::Tensor x = at::zeros({1, 1, 64});
  x.index_put_({0, 0, 0}, 127.0f);
  x.index_put_({0, 0, 1}, 2.5f);
  EXPECT_EQ(fake_quantize_projection(x, q8).data_ptr<float>()[1], 3.0f);
  EXPECT_THROW(fake_quantize_projection(at::zeros({1, 1, 48}), q8), InputError);
}

}  // namespace
}  // namespace kvsafe::kernels
