// Every family against transformers (v4.47, eager attention, float32): tiny random-weight
// models written by tests/oracles/forward_tiny_models.py, a left-padded batch of two, our
// logits within 1e-4 max-abs of transformers' at every real token. This is what proves
// Mistral's window, Qwen2's biases, Phi-3's split fused weights and longrope, Gemma-2's
// soft-capping, (1+w) norms, pre+post norms, alternating window and query scalar, Mixtral's
// routing, OLMo-2's QK-norm and post-norms, and llama3 / linear RoPE scaling.

#include <gtest/gtest.h>

#include <cstring>

#include "modelfile/safetensors_reader.h"
#include "tests/engine/forward_test_util.h"

namespace kvsafe::engine {
namespace {

at::Tensor read_tensor(const SafetensorsFile& file, const std::string& name) {
  const SafetensorsTensorInfo* info = file.find_tensor(name);
  EXPECT_NE(info, nullptr) << name;
  if (info == nullptr) return {};
  std::vector<std::int64_t> shape(info->shape.begin(), info->shape.end());
  if (info->dtype == SafetensorsDtype::kI32) {
    at::Tensor t = at::empty(shape, at::kInt);
    const auto bytes = file.tensor_data(*info);
    std::memcpy(t.data_ptr<std::int32_t>(), bytes.data(), bytes.size());
    return t.to(at::kLong);
  }
  at::Tensor t = at::empty(shape, at::kFloat);
  file.to_float(*info, std::span<float>(t.data_ptr<float>(), static_cast<std::size_t>(t.numel())));
  return t;
}

struct FamilyCase {
  const char* dir;
  ModelFamily family;
};

class Family : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(Family, LogitsMatchTransformers) {
  const auto dir = test::forward_fixture(GetParam().dir);
  const auto model = Model::load(dir);
  EXPECT_EQ(model->config().family, GetParam().family);
  const auto expected = SafetensorsFile::open(dir / "expected.safetensors");
  const at::Tensor ids = read_tensor(*expected, "input_ids");
  const at::Tensor valid = read_tensor(*expected, "attention_mask").to(at::kBool);
  const at::Tensor reference = read_tensor(*expected, "logits");
  KvCache cache(*model, ids.size(0));
  const at::Tensor logits = model->forward(ids, valid, cache, {.logits = LogitsMode::kAll});
  ASSERT_EQ(logits.sizes(), reference.sizes());
  const at::Tensor mask = valid.unsqueeze(-1).expand_as(logits);
  const double err = test::max_abs_diff(logits.masked_select(mask), reference.masked_select(mask));
  EXPECT_LT(err, 1e-4) << GetParam().dir;
  EXPECT_GT(reference.abs().max().item<double>(), 1.0) << "logits too flat to test anything";

  // Prefill of the first 6 slots, then one slot per call: the same logits. NOTE: not for
  // Phi-3's longrope, which picks short or long factors per call from the call's largest
  // position (transformers does the same), so a short prefill rotates with other factors
  // than the one-shot reference.
  if (GetParam().family == ModelFamily::kPhi3) return;
  KvCache steps(*model, ids.size(0));
  const std::int64_t split = 6, total = ids.size(1);
  at::Tensor got =
      model->forward(ids.narrow(1, 0, split), valid.narrow(1, 0, split), steps, {.logits = LogitsMode::kAll});
  std::vector<at::Tensor> parts{got};
  for (std::int64_t t = split; t < total; ++t) {
    parts.push_back(model->forward(ids.narrow(1, t, 1), valid.narrow(1, t, 1), steps, {.logits = LogitsMode::kAll}));
  }
  const at::Tensor incremental = at::cat(parts, 1);
  EXPECT_LT(test::max_abs_diff(incremental.masked_select(mask), reference.masked_select(mask)), 1e-4)
      << GetParam().dir << " (incremental decode)";
}

INSTANTIATE_TEST_SUITE_P(Tiny, Family,
                         ::testing::Values(FamilyCase{"forward_llama", ModelFamily::kLlama},
                                           FamilyCase{"forward_llama_linear", ModelFamily::kLlama},
                                           FamilyCase{"forward_mistral", ModelFamily::kMistral},
                                           FamilyCase{"forward_qwen2", ModelFamily::kQwen2},
                                           FamilyCase{"forward_phi3", ModelFamily::kPhi3},
                                           FamilyCase{"forward_gemma2", ModelFamily::kGemma2},
                                           FamilyCase{"forward_mixtral", ModelFamily::kMixtral},
                                           FamilyCase{"forward_olmo2", ModelFamily::kOlmo2}),
                         [](const ::testing::TestParamInfo<FamilyCase>& param_info) {
                           return std::string(param_info.param.dir).substr(8);
                         });

}  // namespace
}  // namespace kvsafe::engine
