// SmolLM2-135M-Instruct (Q4_1 GGUF) against llama.cpp on a lossless float32 copy of the same file
// (tests/oracles/forward_smollm2_llamacpp.py -> fixtures/forward_smollm2_llamacpp.safetensors):
// next-token logits at every position of 20 chat prompts + llama.cpp's greedy answers
// (> 2000 positions): argmax agreement >= 99%, mean cosine >= 0.999 (over 128 fixed vocabulary
// ids + the top 8); greedy answers at the paper's batch 4 identical for >= 18 of 20; batch 1
// vs batch 8 greedy answers compared and reported. Label `model`: skipped without the model.

#include <gtest/gtest.h>

#include <cstring>

#include "engine/generator.h"
#include "modelfile/safetensors_reader.h"
#include "tests/engine/forward_test_util.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace kvsafe::engine {
namespace {

std::vector<std::int32_t> ints(const SafetensorsFile& file, const std::string& name) {
  const SafetensorsTensorInfo* info = file.find_tensor(name);
  EXPECT_NE(info, nullptr) << name;
  if (info == nullptr) return {};
  const auto bytes = file.tensor_data(*info);
  std::vector<std::int32_t> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

at::Tensor floats(const SafetensorsFile& file, const std::string& name) {
  const SafetensorsTensorInfo* info = file.find_tensor(name);
  EXPECT_NE(info, nullptr) << name;
  at::Tensor t = at::empty(info->shape, at::kFloat);
  file.to_float(*info, std::span<float>(t.data_ptr<float>(), static_cast<std::size_t>(t.numel())));
  return t;
}

class SmolLM2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(test::smollm2_gguf())) return;
    model_ = Model::load(test::smollm2_gguf()).release();
    tokenizer_ = Tokenizer::load(test::smollm2_gguf()).release();
    oracle_ = SafetensorsFile::open(test::forward_fixture("forward_smollm2_llamacpp.safetensors")).release();
    const auto lengths = ints(*oracle_, "prompt_len");
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      const auto ids = ints(*oracle_, "ids_" + std::to_string(i));
      sequences_.emplace_back(ids.begin(), ids.end());
      prompts_.emplace_back(ids.begin(), ids.begin() + lengths[i]);
      answers_.emplace_back(ids.begin() + lengths[i], ids.end());
    }
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
    delete oracle_;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << test::smollm2_gguf() << " not found (scripts/fetch-model)";
  }
  static std::vector<Generation> greedy(std::int64_t batch, std::int64_t max_new) {
    Generator generator(*model_);
    return generator.generate(prompts_, {.max_new_tokens = max_new,
                                         .batch_size = batch,
                                         .stop_tokens = default_stop_tokens(*tokenizer_),
                                         .pad_id = *tokenizer_->eos_id()});
  }
  static Model* model_;
  static Tokenizer* tokenizer_;
  static SafetensorsFile* oracle_;
  static std::vector<std::vector<TokenId>> sequences_, prompts_, answers_;
};
Model* SmolLM2::model_ = nullptr;
Tokenizer* SmolLM2::tokenizer_ = nullptr;
SafetensorsFile* SmolLM2::oracle_ = nullptr;
std::vector<std::vector<TokenId>> SmolLM2::sequences_, SmolLM2::prompts_, SmolLM2::answers_;

TEST_F(SmolLM2, NextTokenLogitsAgreeWithLlamaCpp) {
  const auto argmax = ints(*oracle_, "argmax");
  const auto top_ids = ints(*oracle_, "topk_ids");
  const at::Tensor top_logits = floats(*oracle_, "topk_logits");
  const auto probe = ints(*oracle_, "probe_ids");
  const at::Tensor probe_logits = floats(*oracle_, "probe_logits");
  const std::int64_t k = top_logits.size(1);
  const at::Tensor probe_index = at::tensor(std::vector<std::int64_t>(probe.begin(), probe.end()));
  std::int64_t position = 0, agree = 0;
  double cosine_sum = 0, max_top_diff = 0;
  for (const auto& seq : sequences_) {
    const at::Tensor logits = test::all_logits(*model_, seq).squeeze(0);  // [n, vocab]
    const at::Tensor ours_argmax = logits.argmax(-1);
    for (std::int64_t t = 0; t < logits.size(0); ++t, ++position) {
      agree += ours_argmax[t].item<std::int64_t>() == argmax[static_cast<std::size_t>(position)];
      const at::Tensor theirs_top_ids =
          at::tensor(std::vector<std::int64_t>(top_ids.begin() + position * k, top_ids.begin() + (position + 1) * k));
      const at::Tensor ours =
          at::cat({logits[t].index_select(0, probe_index), logits[t].index_select(0, theirs_top_ids)});
      const at::Tensor theirs = at::cat({probe_logits[position], top_logits[position]});
      cosine_sum += at::cosine_similarity(ours.to(at::kDouble), theirs.to(at::kDouble), 0).item<double>();
      max_top_diff =
          std::max(max_top_diff, test::max_abs_diff(logits[t].index_select(0, theirs_top_ids), top_logits[position]));
    }
  }
  ASSERT_EQ(position, static_cast<std::int64_t>(argmax.size()));
  EXPECT_GE(position, 2000);
  const double agreement = static_cast<double>(agree) / static_cast<double>(position);
  const double cosine = cosine_sum / static_cast<double>(position);
  std::printf(
      "SmolLM2 vs llama.cpp: %lld positions, argmax agreement %.4f, mean cosine %.6f, max |top-8 logit "
      "diff| %.4f\n",
      static_cast<long long>(position), agreement, cosine, max_top_diff);
  EXPECT_GE(agreement, 0.99);
  EXPECT_GE(cosine, 0.999);
}

TEST_F(SmolLM2, GreedyAnswersAtBatch4MatchLlamaCpp) {
  const auto out = greedy(4, 128);
  int same = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const bool equal = out[i].tokens == answers_[i];
    same += equal;
    if (!equal) {
      std::printf("prompt %zu differs:\n  ours:      %s\n  llama.cpp: %s\n", i,
                  tokenizer_->decode(out[i].tokens).c_str(), tokenizer_->decode(answers_[i]).c_str());
    }
  }
  std::printf("greedy answers identical to llama.cpp: %d of %zu\n", same, out.size());
  EXPECT_GE(same, 18);
}

TEST_F(SmolLM2, Batch1VersusBatch8Greedy) {
  // The linear layers give a row the same bits in any batch (engine/packed_gemm.h), but left
  // padding changes prefill attention's BLAS products (longer rows, other blocking): float
  // noise that may flip a near-tie argmax and the rest of an answer. Report it, require that
  // it stays rare (20 of 20 agreed when the packed kernels landed).
  const auto one = greedy(1, 64);
  const auto eight = greedy(8, 64);
  int same = 0;
  for (std::size_t i = 0; i < one.size(); ++i) {
    if (one[i].tokens == eight[i].tokens) {
      ++same;
      continue;
    }
    std::size_t first = 0;
    while (first < one[i].tokens.size() && first < eight[i].tokens.size() &&
           one[i].tokens[first] == eight[i].tokens[first]) {
      ++first;
    }
    std::printf("prompt %zu: batch 1 and batch 8 diverge at generated token %zu\n", i, first);
  }
  std::printf("batch 1 vs batch 8 greedy answers identical: %d of %zu\n", same, one.size());
  EXPECT_GE(same, 18);
}

TEST_F(SmolLM2, QuantizedWeightsGiveTheFloatModelsBits) {
  // The file's Q4_1 layers and Q8_0 embedding stay quantized in memory by default
  // (engine/quantized_panels.h); expanded at load instead, every logit must be the same bits:
  // prefill (sliced expansion), decode at batch 4 (in registers with the AVX-512 and AVX2
  // kernels, sliced with the baseline ones) and the tied embedding.
  const auto expanded = Model::load(test::smollm2_gguf(), {.keep_quantized = false});
  std::printf("SmolLM2 weights: %.1f MB quantized, %.1f MB expanded\n",
              static_cast<double>(model_->weight_bytes()) / 1e6, static_cast<double>(expanded->weight_bytes()) / 1e6);
  // Every matrix kept quantized (one left as floats would add at least 1.3 MB): 4.5-10 bits
  // a weight against 32.
  EXPECT_LT(model_->weight_bytes() * 4, expanded->weight_bytes());
  const std::vector<std::vector<TokenId>> rows(prompts_.begin(), prompts_.begin() + 4);
  const auto batch = test::left_pad(rows, *tokenizer_->eos_id());
  KvCache ours(*model_, 4), theirs(*expanded, 4);
  at::Tensor a = model_->forward(batch.tokens, batch.valid, ours, {.logits = LogitsMode::kAll});
  at::Tensor b = expanded->forward(batch.tokens, batch.valid, theirs, {.logits = LogitsMode::kAll});
  EXPECT_TRUE(at::equal(a, b)) << "prefill";
  for (int step = 0; step < 8; ++step) {
    const at::Tensor next = a.select(1, a.size(1) - 1).argmax(-1).unsqueeze(1);
    a = model_->forward(next, at::Tensor(), ours, {.logits = LogitsMode::kAll});
    b = expanded->forward(next, at::Tensor(), theirs, {.logits = LogitsMode::kAll});
    EXPECT_TRUE(at::equal(a, b)) << "decode step " << step;
  }
}

TEST_F(SmolLM2, ChatTemplateTokensEqualTheOracles) {
  const ChatTemplate chat = load_chat_template(test::smollm2_gguf());
  const std::vector<ChatMessage> turns{{.role = ChatRole::kUser, .content = "What is the capital of Germany?"}};
  EXPECT_EQ(chat.tokenize(*tokenizer_, turns).ids, prompts_[1]);
}

TEST_F(SmolLM2, CapitalOfFrance) {
  Generator generator(*model_);
  const auto ids = tokenizer_->encode("The capital of France is");
  const auto out = generator.generate({ids}, {.max_new_tokens = 12, .stop_tokens = default_stop_tokens(*tokenizer_)});
  const std::string text = tokenizer_->decode(out[0].tokens);
  std::printf("'The capital of France is' -> '%s'\n", text.c_str());
  EXPECT_NE(text.find("Paris"), std::string::npos) << text;
}

}  // namespace
}  // namespace kvsafe::engine
