// Serving mode (placement cache): per sequence and head, padding excluded, windows,
// packed storage == fake quantization, the stateful quantizer, memory accounting.

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "common/error.h"
#include "kernels/kv_cache_quantizer.h"
#include "kernels/kv_quant.h"

namespace kvsafe::kernels {
namespace {

KvSideSpec side_of(const char* label, KvSide side) {
  return resolve_side(parse_kv_label(label), side, 0);
}

TEST(CacheMode, KiviAppendOneByOneEqualsBlockwiseAndWindowsHold) {
  // KIVI G = 2, R = 4: keys flush whole blocks of 4 tokens, values keep the last 4 exact.
  const KvSideSpec key = side_of("kivi2-g2-r4-cache", KvSide::kKey);
  const KvSideSpec value = side_of("kivi2-g2-r4-cache", KvSide::kValue);
  at::manual_seed(3);
  const at::Tensor k = at::randn({1, 2, 9, 8}), v = at::randn({1, 2, 9, 8});
  KvCacheQuantizer cache(key, value);
  cache.append(k.slice(2, 0, 3), v.slice(2, 0, 3));  // prefill of 3
  for (int t = 3; t < 9; ++t) {
    cache.append(k.slice(2, t, t + 1), v.slice(2, t, t + 1));
    if (t == 5) {
      // 6 tokens: keys 0..3 flushed, 4..5 exact; values 0..1 quantized, 2..5 exact.
      const auto [rk, rv] = cache.read();
      EXPECT_FALSE(rk.slice(2, 0, 4).equal(k.slice(2, 0, 4)));
      EXPECT_TRUE(rk.slice(2, 4, 6).equal(k.slice(2, 4, 6)));
      EXPECT_TRUE(rv.slice(2, 2, 6).equal(v.slice(2, 2, 6)));
      EXPECT_FALSE(rv.slice(2, 0, 2).equal(v.slice(2, 0, 2)));
    }
  }
  const auto [rk, rv] = cache.read();
  EXPECT_TRUE(rk.equal(fake_quantize_cache(k, {}, key)));
  EXPECT_TRUE(rv.equal(fake_quantize_cache(v, {}, value)));
  EXPECT_TRUE(rk.slice(2, 8, 9).equal(k.slice(2, 8, 9)));  // 9 = 2 flushes of 4 + 1 exact
  EXPECT_TRUE(rv.slice(2, 5, 9).equal(v.slice(2, 5, 9)));
  // Block-wise by hand: keys of tokens 0..1 of head 0, channel 3 are one asym group of 2.
  const at::Tensor g = k.index({0, 0, at::indexing::Slice(0, 2), 3}).contiguous();
  const float lo = g.min().item<float>(), hi = g.max().item<float>();
  const float s = c10::Half((hi - lo) / 3.0f), m = c10::Half(lo);
  for (int t = 0; t < 2; ++t) {
    const float x = g.data_ptr<float>()[t];
    const float q = std::fmin(3.0f, std::fmax(0.0f, std::nearbyint((x - m) / s)));
    EXPECT_EQ(rk.index({0, 0, t, 3}).item<float>(), q * s + m);
  }
}

TEST(CacheMode, AppendsQuantizeEachGroupOnceAndNeverRewriteHistory) {
  // After every append (prefill with left padding, decode steps, one padded step): the cache
  // equals pack_cache of the whole history, groups quantized so far equal pack_cache's group
  // count (a re-quantized group would count twice), and every slot that was already
  // quantized reads back bit for bit as before.
  at::manual_seed(8);
  const std::int64_t steps = 19;
  for (const char* label : {"kivi2-g2-r4-cache", "int4-ptok-asym-r3-cache", "int3-g32-sym-cache", "fp8e4m3-cal-cache",
                            "q4_0-cache", "int2-ptok-asym-cache+out[5,9]", "int4-pchan-asym-cache"}) {
    KvQuantSpec spec = parse_kv_label(label);
    if (spec.key_granularity == Granularity::kPerChannel) spec.group_size = 4;
    const KvSideSpec key = resolve_side(spec, KvSide::kKey, 0), value = resolve_side(spec, KvSide::kValue, 0);
    const at::Tensor k = at::randn({2, 2, 5 + steps, 64}), v = at::randn({2, 2, 5 + steps, 64}) * 3;
    at::Tensor valid = at::ones({2, 5 + steps}, at::kBool);
    valid.index_put_({1, at::indexing::Slice(0, 2)}, false);  // sequence 1: left padding in the prefill
    valid.index_put_({0, 11}, false);                         // sequence 0: one padded decode slot
    KvCacheQuantizer cache(key, value);
    at::Tensor before_k, before_v;
    for (std::int64_t end = 5; end <= 5 + steps; ++end) {
      const std::int64_t begin = end == 5 ? 0 : end - 1;
      cache.append(k.slice(2, begin, end), v.slice(2, begin, end), valid.slice(1, begin, end));
      const auto [rk, rv] = cache.read();
      const at::Tensor hk = k.slice(2, 0, end), hv = v.slice(2, 0, end), hm = valid.slice(1, 0, end);
      const PackedKv pk = pack_cache(hk, hm, key, {.fp8_scale = cache.key_fp8_scale()});
      const PackedKv pv = pack_cache(hv, hm, value, {.fp8_scale = cache.value_fp8_scale()});
      ASSERT_TRUE(rk.equal(unpack_cache(pk))) << label << " tokens " << end;
      ASSERT_TRUE(rv.equal(unpack_cache(pv))) << label << " tokens " << end;
      EXPECT_EQ(cache.quantized_groups(), pk.params.n_groups + pv.params.n_groups) << label << " tokens " << end;
      EXPECT_EQ(cache.memory_bytes(), pk.memory_bytes() + pv.memory_bytes()) << label << " tokens " << end;
      if (before_k.defined()) {
        // Slots quantized before this append (they differ from the input) are untouched.
        const std::int64_t t = before_k.size(2);
        const at::Tensor was_k = before_k.ne(hk.slice(2, 0, t)), was_v = before_v.ne(hv.slice(2, 0, t));
        EXPECT_TRUE(rk.slice(2, 0, t).masked_select(was_k).equal(before_k.masked_select(was_k))) << label;
        EXPECT_TRUE(rv.slice(2, 0, t).masked_select(was_v).equal(before_v.masked_select(was_v))) << label;
      }
      before_k = rk.clone();
      before_v = rv.clone();
    }
    EXPECT_GT(cache.quantized_groups(), 0) << label;
  }
}

TEST(CacheMode, PaddingNeverJoinsAGroup) {
  // Serving mode: a sequence's result is the same alone or next to a padded sequence.
  at::manual_seed(4);
  const at::Tensor a = at::randn({1, 2, 6, 64});
  const at::Tensor b = at::randn({1, 2, 6, 64}) * 7;
  at::Tensor valid = at::ones({2, 6}, at::kBool);
  valid.index_put_({1, at::indexing::Slice(0, 3)}, false);  // left padding
  for (const char* label : {"int3-pchan-sym-cache", "int4-ptok-asym-cache", "int4-g32-sym-cache", "kivi2-r0-cache",
                            "q4_0-cache", "fp8e5m2-cache"}) {
    KvQuantSpec spec = parse_kv_label(label);
    if (spec.key_granularity == Granularity::kPerChannel) spec.group_size = 3;
    const KvSideSpec side = resolve_side(spec, KvSide::kKey, 0);
    const at::Tensor alone = fake_quantize_cache(a, at::ones({1, 6}, at::kBool), side);
    const at::Tensor batched = fake_quantize_cache(at::cat({a, b}, 0), valid, side);
    EXPECT_TRUE(alone.equal(batched.slice(0, 0, 1))) << label;
    // Padding positions come back as they went in.
    EXPECT_TRUE(batched.index({1, at::indexing::Slice(), at::indexing::Slice(0, 3)})
                    .equal(b.index({0, at::indexing::Slice(), at::indexing::Slice(0, 3)})))
        << label;
  }
}

TEST(CacheMode, PackUnpackIsFakeQuantizeAndMemoryIsAccounted) {
  at::manual_seed(5);
  const at::Tensor x = at::randn({2, 4, 16, 128}).to(at::kBFloat16);
  for (const char* label : {"int4-ptok-asym-cache", "int8-ptok-sym-cache", "int3-g32-asym-cache",
                            "int2-ptok-asym-r4-cache", "fp8e4m3-cache", "q8_0-cache", "q4_1-cache", "q5_0-cache",
                            "q5_1-cache", "int5-g64-sym-cache-fp32s", "int6-ptok-asym-cache"}) {
    const KvSideSpec side = side_of(label, KvSide::kValue);
    const PackedKv packed = pack_cache(x, {}, side);
    const at::Tensor fake = fake_quantize_cache(x, {}, side);
    EXPECT_TRUE(unpack_cache(packed).equal(fake)) << label;
    EXPECT_EQ(fake.scalar_type(), at::kBFloat16);
    EXPECT_EQ(packed.valid_tokens, 2 * 16);
  }
  // int4 per-token asym, head_dim 128: 64 bytes of codes + fp16 scale + fp16 min per row.
  const PackedKv p4 = pack_cache(x, {}, side_of("int4-ptok-asym-cache", KvSide::kKey));
  EXPECT_EQ(p4.memory_bytes(), 2 * 4 * 16 * (64 + 2 + 2));
  const PackedKv q80 = pack_cache(x, {}, side_of("q8_0-cache", KvSide::kKey));
  EXPECT_EQ(q80.memory_bytes(), 2 * 4 * 16 * 4 * (32 + 2));  // 4 ggml blocks per row
}

TEST(CacheMode, OutliersStayExactAndFp8ScaleCalibratesOnce) {
  at::manual_seed(6);
  const at::Tensor k = at::randn({1, 1, 4, 64});
  KvQuantSpec spec = parse_kv_label("int2-ptok-asym-cache+out[5,9]");
  const KvSideSpec side = resolve_side(spec, KvSide::kKey, 0);
  const at::Tensor out = fake_quantize_cache(k, {}, side);
  EXPECT_TRUE(out.select(3, 5).equal(k.select(3, 5)));
  EXPECT_TRUE(out.select(3, 9).equal(k.select(3, 9)));
  EXPECT_FALSE(out.select(3, 0).equal(k.select(3, 0)));

  const KvQuantSpec fp8 = parse_kv_label("fp8e4m3-cal-cache");
  KvCacheQuantizer cache(resolve_side(fp8, KvSide::kKey, 0), resolve_side(fp8, KvSide::kValue, 0));
  cache.append(k, k);
  const float amax = k.abs().max().item<float>();
  EXPECT_EQ(cache.key_fp8_scale(), amax / 200.0f);
  EXPECT_EQ(cache.value_fp8_scale(), amax / 100.0f);
  cache.append(k * 10, k * 10);  // frozen: the later, larger tokens saturate instead
  EXPECT_EQ(cache.key_fp8_scale(), amax / 200.0f);
  const auto [rk, rv] = cache.read();
  EXPECT_LE(rk.abs().max().item<float>(), 448.0f * amax / 200.0f * 1.0001f);
}

TEST(CacheMode, BadInputIsRefused) {
  const KvSideSpec side = side_of("int4-g32-asym-cache", KvSide::kKey);
  EXPECT_THROW(fake_quantize_cache(at::randn({1, 1, 2, 48}), {}, side), InputError);  // 48 % 32
  at::Tensor bad = at::randn({1, 1, 2, 64});
  bad.index_put_({0, 0, 1, 3}, NAN);
  EXPECT_THROW(fake_quantize_cache(bad, {}, side), InputError);
  EXPECT_THROW(fake_quantize_cache(at::randn({2, 64}), {}, side), InputError);
  EXPECT_THROW(KvCacheQuantizer(side_of("int4-ptok-asym", KvSide::kKey), side), InputError);
}

}  // namespace
}  // namespace kvsafe::kernels
