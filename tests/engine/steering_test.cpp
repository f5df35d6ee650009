// Residual steering (engine::ModelLoadOptions::steering, issue 25's testbed) on stories260K:
// the vector is added exactly after the declared layer, at every position, and nowhere else.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/error.h"
#include "engine/activation_capture.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "tests/engine/forward_test_util.h"

namespace kvsafe::engine {
namespace {

constexpr std::int64_t kSteeredLayer = 2;

// Residuals after every layer at every position of one prompt.
std::vector<at::Tensor> residuals(const Model& model, const std::vector<std::int64_t>& ids) {
  std::vector<std::int64_t> positions(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) positions[i] = static_cast<std::int64_t>(i);
  ActivationCapture capture({.layers = {}, .kinds = {CaptureKind::kResidual}, .positions = {positions}});
  std::vector<std::int64_t> tokens = ids;
  const at::Tensor input =
      at::from_blob(tokens.data(), {1, static_cast<std::int64_t>(tokens.size())}, at::kLong).clone();
  KvCache cache(model, 1);
  (void)model.forward(input, at::Tensor(), cache, {.logits = LogitsMode::kNone, .capture = &capture});
  std::vector<at::Tensor> out;
  for (std::int64_t layer = 0; layer < model.config().num_layers; ++layer) {
    out.push_back(capture.get(CaptureKind::kResidual, layer));
  }
  return out;
}

class Steering : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(path())) GTEST_SKIP() << "stories260K missing";
    plain_ = Model::load(path(), {.threads = 1});
    for (std::int64_t i = 0; i < plain_->config().hidden_size; ++i) {
      vector_.push_back(0.01f * static_cast<float>(i % 7) - 0.03f);
    }
  }
  static std::filesystem::path path() { return test::stories_dir() / "stories260K.gguf"; }
  std::unique_ptr<Model> steered(std::int64_t layer, std::vector<float> vector) const {
    ModelLoadOptions options;
    options.threads = 1;
    options.steering = ResidualSteering{.layer = layer, .vector = std::move(vector)};
    return Model::load(path(), options);
  }

  std::unique_ptr<Model> plain_;
  std::vector<float> vector_;
  const std::vector<std::int64_t> ids_{1, 403, 407, 261, 378, 302, 415, 263};
};

TEST_F(Steering, TheVectorIsAddedAfterTheDeclaredLayerAtEveryPosition) {
  const auto model = steered(kSteeredLayer, vector_);
  const auto before = residuals(*plain_, ids_), after = residuals(*model, ids_);
  ASSERT_EQ(before.size(), 5U);
  const at::Tensor v = at::from_blob(vector_.data(), {1, static_cast<std::int64_t>(vector_.size())}, at::kFloat);
  for (std::int64_t layer = 0; layer < kSteeredLayer; ++layer) {
    EXPECT_TRUE(at::equal(before[layer], after[layer])) << "layer " << layer << " changed before the steered one";
  }
  // The same float additions the engine does: bit for bit, at each of the 8 positions.
  EXPECT_TRUE(at::equal(after[kSteeredLayer], before[kSteeredLayer] + v));
  for (std::int64_t layer = kSteeredLayer + 1; layer < 5; ++layer) {
    EXPECT_FALSE(at::allclose(before[layer], after[layer])) << "layer " << layer << " did not feel the steering";
  }
}

TEST_F(Steering, AZeroVectorChangesNothing) {
  const auto model = steered(kSteeredLayer, std::vector<float>(vector_.size(), 0.0f));
  const auto before = residuals(*plain_, ids_), after = residuals(*model, ids_);
  for (std::size_t layer = 0; layer < before.size(); ++layer) EXPECT_TRUE(at::equal(before[layer], after[layer]));
}

TEST_F(Steering, ALayerOrSizeTheModelDoesNotHaveIsRefused) {
  EXPECT_THROW(steered(5, vector_), InputError);  // stories260K has layers 0..4
  EXPECT_THROW(steered(-1, vector_), InputError);
  EXPECT_THROW(steered(0, std::vector<float>(3, 1.0f)), InputError);
}

}  // namespace
}  // namespace kvsafe::engine
