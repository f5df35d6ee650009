#pragma once
// Helpers shared by the forward-pass tests: model paths, tensors from id lists, comparisons.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "tests/testing/model_files.h"
#include "text/tokenizer_data.h"

namespace kvsafe::engine::test {

inline std::filesystem::path forward_source_dir() {
  return KVSAFE_SOURCE_DIR;
}
inline std::filesystem::path stories_dir() {
  return kvsafe::testing::stories260k_gguf_path().parent_path();
}
inline std::filesystem::path forward_fixture(const std::string& name) {
  return forward_source_dir() / "tests" / "engine" / "fixtures" / name;
}
// The model cache (common/environment.h) through the tests' one helper.
inline std::filesystem::path smollm2_gguf() {
  return kvsafe::testing::smollm2_gguf_path();
}

// A test suite sharing one stories260K model (loaded once per suite), skipped when ../shared
// has none.
class StoriesModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto path = stories_dir() / "stories260K.gguf";
    if (std::filesystem::exists(path)) model_ = Model::load(path).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "stories260K not found under ../shared/models";
  }
  static inline Model* model_ = nullptr;
};

// Left-pads `rows` with `pad` into int64 tokens [batch, longest] and bool valid.
struct PaddedBatch {
  at::Tensor tokens;
  at::Tensor valid;
};
inline PaddedBatch left_pad(const std::vector<std::vector<TokenId>>& rows, TokenId pad = 0) {
  std::size_t longest = 0;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  const auto b = static_cast<std::int64_t>(rows.size()), n = static_cast<std::int64_t>(longest);
  PaddedBatch out{at::full({b, n}, pad, at::kLong), at::zeros({b, n}, at::kBool)};
  for (std::int64_t i = 0; i < b; ++i) {
    const auto& r = rows[static_cast<std::size_t>(i)];
    const auto offset = n - static_cast<std::int64_t>(r.size());
    for (std::size_t t = 0; t < r.size(); ++t) {
      out.tokens[i][offset + static_cast<std::int64_t>(t)] = static_cast<std::int64_t>(r[t]);
      out.valid[i][offset + static_cast<std::int64_t>(t)] = true;
    }
  }
  return out;
}

// Logits [1, n, vocab] of one unpadded sequence, by a fresh cache.
inline at::Tensor all_logits(const Model& model, const std::vector<TokenId>& ids, KvPath* path = nullptr) {
  KvCache cache(model, 1, path);
  const auto batch = left_pad({ids});
  return model.forward(batch.tokens, batch.valid, cache, {.logits = LogitsMode::kAll});
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace kvsafe::engine::test
