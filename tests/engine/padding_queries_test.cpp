// engine::PaddingQueries on stories260K: what a left-padding slot's attention gives. The
// projection hook sees the whole call, padding slots included (as the paper's hooks do), so a
// recording KvPath observes the padding rows' keys and values at every layer.
//   kZero: a padding slot attends to nothing, so its keys depend on the pad token alone: the
//          same in two batches whose real tokens differ;
//   kAttendAll: it attends to the call's keys, so later layers' padding keys follow the real
//          tokens of its row.
// Either way real tokens never see padding: their logits are bit-identical under both.

#include <gtest/gtest.h>

#include <map>
#include <utility>

#include "engine/kv_path.h"
#include "tests/engine/forward_test_util.h"

namespace kvsafe::engine {
namespace {

// Keeps every projection hook's input (the exact k/v projections of the call) and returns it
// unchanged.
class RecordingPath final : public KvPath {
 public:
  KvPlacement placement() const override { return KvPlacement::kProjection; }
  at::Tensor project(const at::Tensor& x, const KvProjectionCall& call, double* /*mse*/) override {
    seen[{call.layer, call.side}] = x.clone();
    return x;
  }
  std::map<std::pair<std::int64_t, KvSide>, at::Tensor> seen;
};

class PaddingQueriesTest : public test::StoriesModelTest {
 protected:
  // Row 0: three padding slots (pad token 5), then five real tokens; row 1: eight real tokens.
  struct Run {
    RecordingPath path;
    at::Tensor logits;
  };
  static std::unique_ptr<Run> run(const std::vector<TokenId>& row0, PaddingQueries mode) {
    auto out = std::make_unique<Run>();
    const auto b = test::left_pad({row0, {1, 385, 328, 432, 317, 284, 316, 261}}, 5);
    KvCache cache(*model_, 2, &out->path);
    out->logits = model_->forward(b.tokens, b.valid, cache, {.logits = LogitsMode::kAll, .padding_queries = mode});
    return out;
  }
};

const std::vector<TokenId> kFirst = {1, 403, 407, 261, 378};
const std::vector<TokenId> kSecond = {1, 290, 311, 420, 266};

at::Tensor padding_rows(const at::Tensor& x) {
  return x.select(0, 0).narrow(0, 0, 3);  // row 0, slots 0..2
}

TEST_F(PaddingQueriesTest, ZeroMakesPaddingKeysDependOnThePadTokenAlone) {
  const auto a = run(kFirst, PaddingQueries::kZero);
  const auto b = run(kSecond, PaddingQueries::kZero);
  const std::int64_t layers = model_->config().num_layers;
  ASSERT_EQ(a->path.seen.size(), static_cast<std::size_t>(2 * layers));
  for (const auto& [key, x] : a->path.seen) {
    EXPECT_TRUE(at::equal(padding_rows(x), padding_rows(b->path.seen.at(key)))) << "layer " << key.first;
  }
}

TEST_F(PaddingQueriesTest, AttendAllLetsPaddingKeysFollowTheirRow) {
  const auto a = run(kFirst, PaddingQueries::kAttendAll);
  const auto b = run(kSecond, PaddingQueries::kAttendAll);
  const std::int64_t layers = model_->config().num_layers;
  // Layer 0 sees the embeddings only; from layer 1 on, the padding slots carry what they attended to.
  EXPECT_TRUE(
      at::equal(padding_rows(a->path.seen.at({0, KvSide::kKey})), padding_rows(b->path.seen.at({0, KvSide::kKey}))));
  for (std::int64_t layer = 1; layer < layers; ++layer) {
    EXPECT_FALSE(at::equal(padding_rows(a->path.seen.at({layer, KvSide::kKey})),
                           padding_rows(b->path.seen.at({layer, KvSide::kKey}))))
        << "layer " << layer;
  }
  // And they differ from the zero rule's.
  const auto zero = run(kFirst, PaddingQueries::kZero);
  EXPECT_FALSE(
      at::equal(padding_rows(a->path.seen.at({1, KvSide::kKey})), padding_rows(zero->path.seen.at({1, KvSide::kKey}))));
}

TEST_F(PaddingQueriesTest, RealTokensNeverSeePadding) {
  const auto all = run(kFirst, PaddingQueries::kAttendAll);
  const auto zero = run(kFirst, PaddingQueries::kZero);
  // Real slots: row 0 from slot 3, row 1 everywhere.
  EXPECT_TRUE(at::equal(all->logits.select(0, 0).narrow(0, 3, 5), zero->logits.select(0, 0).narrow(0, 3, 5)));
  EXPECT_TRUE(at::equal(all->logits.select(0, 1), zero->logits.select(0, 1)));
  for (const auto& [key, x] : all->path.seen) {
    EXPECT_TRUE(at::equal(x.select(0, 0).narrow(0, 3, 5), zero->path.seen.at(key).select(0, 0).narrow(0, 3, 5)))
        << "layer " << key.first;
  }
}

}  // namespace
}  // namespace kvsafe::engine
