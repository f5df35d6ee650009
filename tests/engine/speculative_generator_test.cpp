// SpeculativeGenerator (engine/speculative_generator.h) on stories260K, on every CPU kernel
// copy this machine runs (tests/testing/cpu_copies.h): a model drafting for itself gives
// Generator's greedy tokens and every proposal is accepted; a worse draft (its KV cache at
// int2) changes only the acceptance rate, never the answer; a per-token quantized target
// KV path gives Generator's answer with that path; stop tokens, max_new_tokens, the hooks and
// bad inputs behave as in Generator. Also KvCache::truncate (the rollback): a cut cache,
// quantized ones included, is bit for bit a cache that never held the dropped slots.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "engine/quantized_kv_path.h"
#include "engine/speculative_generator.h"
#include "kernels/kv_quant_spec.h"
#include "tests/engine/forward_test_util.h"
#include "tests/testing/cpu_copies.h"

namespace kvsafe::engine {
namespace {

using kernels::parse_kv_label;

// Stories prompts (BOS = 1): the golden file's kind of ids.
const std::vector<std::vector<TokenId>> kPrompts{{1, 403, 407, 261, 378},
                                                 {1, 385, 328, 432, 317, 284, 316, 261},
                                                 {1, 320, 261},
                                                 {1, 449, 286, 271, 400, 297, 265, 260, 330, 407}};

class SpeculativeStories : public kvsafe::testing::CpuCopyTest {
 protected:
  static void SetUpTestSuite() {
    const auto path = test::stories_dir() / "stories260K.gguf";
    if (std::filesystem::exists(path)) model_ = Model::load(path).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    CpuCopyTest::SetUp();
    if (IsSkipped()) return;
    if (model_ == nullptr) GTEST_SKIP() << "stories260K not found under ../shared/models";
  }
  // Generator's greedy answers, one prompt per batch as the speculative generator runs them.
  static std::vector<Generation> plain(const std::vector<std::vector<TokenId>>& prompts, std::int64_t max_new,
                                       KvPath* path = nullptr, std::vector<TokenId> stops = {}) {
    return Generator(*model_).generate(
        prompts, {.max_new_tokens = max_new, .batch_size = 1, .stop_tokens = std::move(stops), .kv_path = path});
  }
  static inline Model* model_ = nullptr;
};
KVSAFE_INSTANTIATE_CPU_COPIES(SpeculativeStories);

void expect_same(const std::vector<Generation>& expected, const std::vector<Generation>& got, const std::string& what) {
  ASSERT_EQ(expected.size(), got.size()) << what;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(expected[i].tokens, got[i].tokens) << what << ", prompt " << i;
    EXPECT_EQ(expected[i].stopped, got[i].stopped) << what << ", prompt " << i;
    EXPECT_EQ(expected[i].stop_token, got[i].stop_token) << what << ", prompt " << i;
  }
}

SpeculativeStats total(const SpeculativeOutput& out) {
  SpeculativeStats sum;
  for (const auto& s : out.stats) {
    sum.rounds += s.rounds;
    sum.proposed += s.proposed;
    sum.accepted += s.accepted;
  }
  return sum;
}

// NOTE: k <= 3 makes the verify call (k + 1 <= kDecodeAttentionMaxTokens query tokens) run
// attention's decode loops, so its logits are a decode step's bits and equality is exact by
// construction. k = 4 and 7 run the verify's attention as BLAS products, equal to rounding:
// the tokens agree unless two logits are within rounding somewhere (they are not, on these
// prompts, in any copy); acceptance stays 1 for the same reason.
TEST_P(SpeculativeStories, SelfDraftGivesGreedyAndAcceptsEverything) {
  constexpr std::int64_t kMaxNew = 40;
  const auto expected = plain(kPrompts, kMaxNew);
  SpeculativeGenerator spec(*model_, *model_);
  for (const std::int64_t k : {1, 2, 3, 4, 7}) {
    const SpeculativeOutput out = spec.generate(kPrompts, {.max_new_tokens = kMaxNew, .draft_tokens = k});
    expect_same(expected, out.generations, "k " + std::to_string(k));
    for (std::size_t i = 0; i < kPrompts.size(); ++i) {
      const SpeculativeStats& s = out.stats[i];
      EXPECT_EQ(s.accepted, s.proposed) << "k " << k << ", prompt " << i;
      EXPECT_EQ(s.acceptance_rate(), 1.0) << "k " << k << ", prompt " << i;
      // 39 tokens after the prefill's first, k + 1 per round, the last round capped.
      EXPECT_EQ(s.rounds, (kMaxNew - 1 + k) / (k + 1)) << "k " << k << ", prompt " << i;
      EXPECT_EQ(s.proposed + s.rounds, kMaxNew - 1) << "k " << k << ", prompt " << i;
    }
  }
}

// The draft's cache at int2 (cache placement: the quantized store is rolled back by
// re-deriving it; projection placement: an exact store holding quantized projections): its
// proposals go wrong, the target rejects them, and the answer is still the target's own.
TEST_P(SpeculativeStories, WorseDraftChangesOnlyTheAcceptanceRate) {
  constexpr std::int64_t kMaxNew = 40;
  const auto expected = plain(kPrompts, kMaxNew);
  SpeculativeGenerator spec(*model_, *model_);
  for (const char* label : {"int2-ptok-asym-cache", "int2-ptensor-sym", "kivi2-g8-r8-cache"}) {
    auto draft_path = make_kv_path(parse_kv_label(label));
    ASSERT_NE(draft_path, nullptr);
    for (const std::int64_t k : {1, 2, 4, 7}) {
      const std::string what = std::string(label) + ", k " + std::to_string(k);
      const SpeculativeOutput out =
          spec.generate(kPrompts, {.max_new_tokens = kMaxNew, .draft_tokens = k, .draft_kv_path = draft_path.get()});
      expect_same(expected, out.generations, what);
      const SpeculativeStats sum = total(out);
      EXPECT_GT(sum.proposed, 0) << what;
      EXPECT_LT(sum.accepted, sum.proposed) << what;
      EXPECT_LT(sum.acceptance_rate(), 1.0) << what;
      std::printf("%s: acceptance %.3f (%lld of %lld proposals, %lld rounds)\n", what.c_str(), sum.acceptance_rate(),
                  static_cast<long long>(sum.accepted), static_cast<long long>(sum.proposed),
                  static_cast<long long>(sum.rounds));
    }
  }
}

// A per-token quantizer gives each slot its own statistics, so a slot's stored K/V does not
// depend on which call brought it or what else that call held (the rejected proposals
// included): in the projection placement the hook quantizes each token's row alone, in the
// cache placement (no residual window) each slot is quantized on arrival, and the verify's
// position j reads exactly the slots a decode step at j would. With the same per-token path on
// the target, speculative decoding (draft exact or not) gives Generator's answer with that
// path. (Not so for statistics over the call or a residual window: engine/speculative_generator.h.)
TEST_P(SpeculativeStories, PerTokenTargetKvGivesGreedyWithThatPath) {
  constexpr std::int64_t kMaxNew = 40;
  SpeculativeGenerator spec(*model_, *model_);
  for (const char* label : {"int4-ptok-asym", "int2-ptok-asym", "int4-ptok-asym-cache", "int2-ptok-asym-cache"}) {
    auto target_path = make_kv_path(parse_kv_label(label));
    auto draft_path = make_kv_path(parse_kv_label(label));
    const auto expected = plain(kPrompts, kMaxNew, target_path.get());
    for (const std::int64_t k : {1, 3, 4}) {
      for (KvPath* draft : {static_cast<KvPath*>(nullptr), draft_path.get()}) {
        const std::string what = std::string(label) + ", k " + std::to_string(k) +
                                 (draft != nullptr ? ", draft quantized" : ", draft exact");
        const SpeculativeOutput out = spec.generate(kPrompts, {.max_new_tokens = kMaxNew,
                                                               .draft_tokens = k,
                                                               .target_kv_path = target_path.get(),
                                                               .draft_kv_path = draft});
        expect_same(expected, out.generations, what);
        // The same path on both sides: the draft is the target, every proposal is accepted.
        if (draft != nullptr) {
          EXPECT_EQ(total(out).acceptance_rate(), 1.0) << what;
        }
      }
    }
  }
}

// The other side of the previous test: where a slot's stored K/V depends on the call around it,
// the verify call quantizes differently from a one-token step and the answer is not
// Generator's, even with the same path on both models (which then also disagree with each
// other): per-tensor and per-channel statistics of the projection placement span the verify's
// k + 1 tokens, rejected proposals included; a cache placement residual window lets the
// verify's earlier positions read slots that its later ones pushed out of the window. Every
// prompt's answer changed here (stories260K, 40 tokens); one is enough to show it.
TEST_P(SpeculativeStories, CallSpanningKvIsNotGreedyWithThatPath) {
  constexpr std::int64_t kMaxNew = 40;
  SpeculativeGenerator spec(*model_, *model_);
  for (const char* label : {"int4-ptensor-sym", "int2-pchan-asym", "int2-ptok-asym-r4-cache", "kivi2-g8-r8-cache"}) {
    auto path = make_kv_path(parse_kv_label(label));
    const auto expected = plain(kPrompts, kMaxNew, path.get());
    const auto out = spec.generate(
        kPrompts,
        {.max_new_tokens = kMaxNew, .draft_tokens = 3, .target_kv_path = path.get(), .draft_kv_path = path.get()});
    std::size_t same = 0;
    for (std::size_t i = 0; i < kPrompts.size(); ++i) same += out.generations[i].tokens == expected[i].tokens ? 1 : 0;
    EXPECT_LT(same, kPrompts.size()) << label;
    EXPECT_LT(total(out).acceptance_rate(), 1.0) << label;
  }
}

TEST_P(SpeculativeStories, StopTokensAndMaxNewTokensEndAsInGenerator) {
  constexpr std::int64_t kMaxNew = 40;
  SpeculativeGenerator spec(*model_, *model_);
  const auto unstopped = plain(kPrompts, kMaxNew);
  // Stop at a token each answer reaches in the middle, first met inside a round and after.
  std::vector<TokenId> stops;
  for (const auto& g : unstopped) stops.push_back(g.tokens[g.tokens.size() / 2]);
  std::sort(stops.begin(), stops.end());
  stops.erase(std::unique(stops.begin(), stops.end()), stops.end());
  auto worse = make_kv_path(parse_kv_label("int2-ptok-asym-cache"));
  for (const std::int64_t k : {1, 2, 4, 7}) {
    for (KvPath* draft : {static_cast<KvPath*>(nullptr), worse.get()}) {
      const std::string what = "k " + std::to_string(k) + (draft != nullptr ? ", draft int2" : "");
      const auto expected = plain(kPrompts, kMaxNew, nullptr, stops);
      const auto out = spec.generate(
          kPrompts, {.max_new_tokens = kMaxNew, .draft_tokens = k, .stop_tokens = stops, .draft_kv_path = draft});
      expect_same(expected, out.generations, "stops, " + what);
      for (const auto& g : out.generations) EXPECT_TRUE(g.stopped) << what;
      for (const std::int64_t max_new : {0, 1, 2, 3, 5, 8, 9}) {
        const auto short_expected = plain(kPrompts, max_new, nullptr, stops);
        const auto short_out = spec.generate(
            kPrompts, {.max_new_tokens = max_new, .draft_tokens = k, .stop_tokens = stops, .draft_kv_path = draft});
        expect_same(short_expected, short_out.generations, "max_new " + std::to_string(max_new) + ", " + what);
      }
    }
  }
}

TEST_P(SpeculativeStories, HooksSeeWhatGeneratorsDo) {
  std::vector<std::vector<float>> expected_first(kPrompts.size()), got_first(kPrompts.size());
  std::vector<std::vector<TokenId>> expected_tokens(kPrompts.size()), got_tokens(kPrompts.size());
  Generator(*model_).generate(
      kPrompts,
      {.max_new_tokens = 12,
       .batch_size = 1,
       .on_first_logits = [&](std::size_t prompt, const float* logits,
                              std::int64_t vocab) { expected_first[prompt].assign(logits, logits + vocab); }},
      [&](std::size_t prompt, TokenId token) { expected_tokens[prompt].push_back(token); });
  SpeculativeGenerator(*model_, *model_)
      .generate(kPrompts,
                {.max_new_tokens = 12,
                 .draft_tokens = 3,
                 .on_first_logits = [&](std::size_t prompt, const float* logits,
                                        std::int64_t vocab) { got_first[prompt].assign(logits, logits + vocab); }},
                [&](std::size_t prompt, TokenId token) { got_tokens[prompt].push_back(token); });
  EXPECT_EQ(expected_first, got_first);  // the same bits: the same prefill
  EXPECT_EQ(expected_tokens, got_tokens);
  EXPECT_EQ(got_first[0].size(), static_cast<std::size_t>(model_->config().vocab_size));
}

TEST_P(SpeculativeStories, BadInputsThrowInputError) {
  SpeculativeGenerator spec(*model_, *model_);
  const std::vector<std::vector<TokenId>> ok{{1, 403}};
  EXPECT_THROW(spec.generate(ok, {.temperature = 0.7}), InputError);
  EXPECT_THROW(spec.generate(ok, {.draft_tokens = 0}), InputError);
  EXPECT_THROW(spec.generate(ok, {.max_new_tokens = -1}), InputError);
  EXPECT_THROW(spec.generate(ok, {.pad_id = 512}), InputError);
  EXPECT_THROW(spec.generate({{1, 403}, {}}, {}), InputError);
  EXPECT_THROW(spec.generate({{1, 512}}, {}), InputError);
  EXPECT_THROW(spec.generate({{1, -1}}, {}), InputError);
  // Nothing is generated before a later prompt is refused.
  std::size_t seen = 0;
  EXPECT_THROW(spec.generate({{1, 403}, {1, 600}}, {}, [&](std::size_t, TokenId) { ++seen; }), InputError);
  EXPECT_EQ(seen, 0u);
  // A draft with another vocabulary (the tiny Llama fixture: 128 ids against 512).
  const auto other = Model::load(test::forward_fixture("forward_llama"));
  EXPECT_THROW((void)SpeculativeGenerator(*model_, *other), InputError);
  EXPECT_THROW((void)SpeculativeGenerator(*other, *model_), InputError);
  // Nothing asked: nothing generated, as Generator.
  const auto none = spec.generate(ok, {.max_new_tokens = 0});
  ASSERT_EQ(none.generations.size(), 1u);
  EXPECT_TRUE(none.generations[0].tokens.empty());
  EXPECT_EQ(none.stats[0].rounds, 0);
}

// ---- KvCache::truncate ------------------------------------------------------------------

// Logits [1, 1, vocab] of `next` after the cache was filled by `calls` in turn.
at::Tensor next_logits(const Model& model, KvCache& cache, const std::vector<std::vector<TokenId>>& calls,
                       TokenId next) {
  for (const auto& ids : calls) model.forward(test::left_pad({ids}).tokens, at::Tensor(), cache);
  return model.forward(test::left_pad({{next}}).tokens, at::Tensor(), cache, {.logits = LogitsMode::kAll});
}

// A cache cut back inside a call of 4 slots, then fed one more token, against one that only
// ever held the kept slots: the same logits bit for bit. NOTE: the call stays within
// kDecodeAttentionMaxTokens, so that the kept slots' K/V are the same bits whether they came
// in the call of 4 or in a shorter one (longer calls run attention as BLAS products, and later
// layers' K/V would differ by rounding, whatever the cache does). For the same reason stores
// with a residual window (KIVI's too) are cut only back to the call's start here: inside the
// call, the kept slots' attention read the store after all 4 slots were appended, when older
// slots had left the exact window, so their later layers' K/V differ from a shorter call's
// (engine/speculative_generator.h); the next test shows those stores' own cut is exact.
TEST_P(SpeculativeStories, TruncatedCacheIsTheCacheThatNeverHeldTheSlots) {
  std::vector<TokenId> prompt{1};
  for (TokenId t = 0; t < 30; ++t) prompt.push_back(260 + 7 * t % 200);  // 31 slots: the flush at 32 needs 1 more
  const std::vector<TokenId> call{403, 407, 261, 378};
  for (const char* label : {"none", "int4-ptok-asym", "int4-ptok-asym-cache", "fp8e4m3-cal-cache", "int4-g4-asym-cache",
                            "int2-ptok-asym-r4-cache", "kivi2-g8-r8-cache"}) {
    auto path = make_kv_path(parse_kv_label(label));
    const bool window = std::string(label).find("-r") != std::string::npos;
    for (const std::int64_t keep : {0, 1, 3}) {  // slots of `call` kept
      if (window && keep > 0) continue;
      KvCache cut(*model_, 1, path.get());
      cut.enable_truncation();
      model_->forward(test::left_pad({prompt}).tokens, at::Tensor(), cut);
      model_->forward(test::left_pad({call}).tokens, at::Tensor(), cut);
      cut.truncate(static_cast<std::int64_t>(prompt.size()) + keep);
      EXPECT_EQ(cut.tokens(), static_cast<std::int64_t>(prompt.size()) + keep);
      EXPECT_EQ(cut.lengths().item<std::int64_t>(), static_cast<std::int64_t>(prompt.size()) + keep);
      const at::Tensor got = next_logits(*model_, cut, {}, 300);
      KvCache fresh(*model_, 1, path.get());
      std::vector<std::vector<TokenId>> calls{prompt};
      if (keep > 0) calls.emplace_back(call.begin(), call.begin() + keep);
      const at::Tensor want = next_logits(*model_, fresh, calls, 300);
      EXPECT_TRUE(at::equal(got, want)) << label << ", keep " << keep;
      EXPECT_EQ(cut.memory_bytes(), fresh.memory_bytes()) << label << ", keep " << keep;
    }
  }
}

// The stores alone, on random K/V (2 sequences, the second left-padded): appends of 10, 26 and 3
// slots, cut anywhere (inside the first call too, and to nothing), then 2 more slots; against a
// store given only the kept slots (the first call's part as its first append) and the same 2:
// the same history bit for bit, and the same stored size. Here the windows and groups that
// span the cut matter: a residual window of 4 (slots leave it only because later ones came),
// KIVI's key flushes of 8 and per-channel keys' of 32 (completed by dropped slots), FP8's scale
// calibrated on the first call.
TEST_P(SpeculativeStories, TruncatedStoreIsTheStoreThatNeverHeldTheSlots) {
  const KvStoreShape shape{.layer = 0,
                           .batch = 2,
                           .kv_heads = 2,
                           .head_dim = 64,
                           .dtype = at::kFloat,
                           .device = c10::kCPU,
                           .expected_tokens = 0,
                           .truncatable = true};
  at::manual_seed(7);
  const at::Tensor keys = at::randn({2, 2, 41, 64}), values = at::randn({2, 2, 41, 64});
  at::Tensor valid = at::ones({2, 41}, at::kBool);
  valid[1].narrow(0, 0, 3).fill_(false);
  const auto slice = [&](const at::Tensor& t, std::int64_t begin, std::int64_t end) {
    return t.narrow(t.dim() == 4 ? 2 : 1, begin, end - begin);
  };
  const auto feed = [&](KvLayerStore& store, std::int64_t begin, std::int64_t end) {
    return store.append(slice(keys, begin, end), slice(values, begin, end), slice(valid, begin, end));
  };
  for (const char* label : {"none", "int4-ptok-asym-cache", "int2-ptok-asym-r4-cache", "kivi2-g8-r8-cache",
                            "int4-pchan-asym-r32-cache", "fp8e4m3-cal-cache", "int4-g16-asym-cache"}) {
    auto path = make_kv_path(parse_kv_label(label));
    const auto make = [&] { return path ? path->make_store(shape) : std::make_unique<ExactKvStore>(shape); };
    for (const std::int64_t keep : {0, 4, 10, 13, 30, 33, 36}) {
      auto cut = make();
      feed(*cut, 0, 10);
      feed(*cut, 10, 36);
      feed(*cut, 36, 39);
      ASSERT_TRUE(cut->truncate(keep)) << label;
      EXPECT_EQ(cut->tokens(), keep);
      const KvRead got = feed(*cut, 39, 41);
      auto fresh = make();
      if (keep > 0) feed(*fresh, 0, std::min<std::int64_t>(keep, 10));
      if (keep > 10) feed(*fresh, 10, keep);
      const KvRead want = feed(*fresh, 39, 41);
      EXPECT_TRUE(at::equal(got.keys, want.keys)) << label << ", keep " << keep;
      EXPECT_TRUE(at::equal(got.values, want.values)) << label << ", keep " << keep;
      EXPECT_EQ(cut->memory_bytes(), fresh->memory_bytes()) << label << ", keep " << keep;
    }
  }
}

TEST_P(SpeculativeStories, TruncateRefusesWhatItCannotDo) {
  KvCache exact(*model_, 1);
  model_->forward(test::left_pad({{1, 403, 407}}).tokens, at::Tensor(), exact);
  EXPECT_THROW(exact.truncate(4), InputError);
  EXPECT_THROW(exact.truncate(-1), InputError);
  EXPECT_THROW(exact.enable_truncation(), InputError);  // after the first call
  exact.truncate(2);                                    // exact stores need no preparation
  EXPECT_EQ(exact.tokens(), 2);
  // A quantized store keeps its exact inputs only when asked before the first call.
  auto path = make_kv_path(parse_kv_label("int4-ptok-asym-cache"));
  KvCache quantized(*model_, 1, path.get());
  model_->forward(test::left_pad({{1, 403, 407}}).tokens, at::Tensor(), quantized);
  EXPECT_THROW(quantized.truncate(2), InputError);
}

}  // namespace
}  // namespace kvsafe::engine
