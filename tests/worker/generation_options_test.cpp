// generation_config.json (issue 20 item 2): the reader on real files, and which of the grid's
// settings and the file's values a generation cell decodes with.

#include <gtest/gtest.h>

#include <fstream>

#include "modelfile/generation_config.h"
#include "modelfile/model_file_error.h"
#include "tests/testing/model_files.h"
#include "tests/testing/temp_dir.h"
#include "text/tokenizer.h"
#include "worker/generation_options.h"

namespace kvsafe::worker {
namespace {

const char* kQwenLike = R"({"bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643],
  "pad_token_id": 151643, "repetition_penalty": 1.05, "temperature": 0.7, "top_k": 20, "top_p": 0.8})";

TEST(GenerationConfig, ReadsAFoldersFileAndNothingElse) {
  testing::TempDir dir("generation_config");
  std::ofstream(dir.path() / "generation_config.json") << kQwenLike;
  const engine::GenerationConfig config = engine::read_generation_config(dir.path());
  EXPECT_EQ(*config.repetition_penalty, 1.05);
  EXPECT_EQ(config.eos_token_ids, (std::vector<std::int64_t>{151645, 151643}));
  EXPECT_EQ(*config.top_k, 20);
  EXPECT_EQ(engine::describe(config),
            "repetition_penalty 1.05, eos [151645, 151643], top_k 20, temperature 0.7, top_p 0.8");
  // A single eos id; a GGUF file or a folder without the file: nothing.
  EXPECT_EQ(engine::parse_generation_config(R"({"eos_token_id": 2})", "g.json").eos_token_ids,
            (std::vector<std::int64_t>{2}));
  EXPECT_TRUE(engine::read_generation_config(kvsafe::testing::stories260k_gguf_path()).source.empty());
  testing::TempDir empty("generation_config_none");
  EXPECT_EQ(engine::describe(engine::read_generation_config(empty.path())), "none");
}

TEST(GenerationConfig, BadValuesNameTheFileAndKey) {
  try {
    engine::parse_generation_config(R"({"repetition_penalty": 0})", "/m/generation_config.json");
    FAIL() << "accepted";
  } catch (const engine::ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("/m/generation_config.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("repetition_penalty"), std::string::npos) << e.what();
  }
  EXPECT_THROW(engine::parse_generation_config(R"({"eos_token_id": [1, "x"]})", "g.json"), engine::ModelFileError);
  EXPECT_THROW(engine::parse_generation_config("{not json", "g.json"), engine::ModelFileError);
}

TEST(GenerationOptions, TheFileAppliesWhenTheGridAsksAndExplicitValuesWin) {
  if (!std::filesystem::exists(kvsafe::testing::stories260k_gguf_path())) GTEST_SKIP() << "no stories260K";
  const auto tokenizer = engine::Tokenizer::load(kvsafe::testing::stories260k_gguf_path());
  const engine::GenerationConfig file = engine::parse_generation_config(kQwenLike, "generation_config.json");
  orchestrator::GenerationSettings greedy;
  // kvsafe's default: the file is ignored.
  const engine::GenerationOptions ignored = generation_options(greedy, *tokenizer, file);
  EXPECT_EQ(ignored.repetition_penalty, 1.0);
  EXPECT_EQ(ignored.stop_tokens, engine::default_stop_tokens(*tokenizer));
  // As transformers applies it: the penalty even when greedy, its end tokens added; no top_k greedy.
  greedy.use_generation_config = true;
  const engine::GenerationOptions applied = generation_options(greedy, *tokenizer, file);
  EXPECT_EQ(applied.repetition_penalty, 1.05);
  EXPECT_NE(std::find(applied.stop_tokens.begin(), applied.stop_tokens.end(), 151645), applied.stop_tokens.end());
  EXPECT_EQ(applied.top_k, 0);
  // Sampling: the file's top_k; transformers' 50 when the file has none; the grid's over both.
  orchestrator::GenerationSettings sampled = greedy;
  sampled.temperature = 0.7;
  EXPECT_EQ(generation_options(sampled, *tokenizer, file).top_k, 20);
  EXPECT_EQ(generation_options(sampled, *tokenizer, engine::GenerationConfig{}).top_k, kTransformersDefaultTopK);
  sampled.top_k = 5;
  sampled.repetition_penalty = 1.3;
  const engine::GenerationOptions explicit_values = generation_options(sampled, *tokenizer, file);
  EXPECT_EQ(explicit_values.top_k, 5);
  EXPECT_EQ(explicit_values.repetition_penalty, 1.3);
}

TEST(GenerationOptions, PadTokenAndPaddingQueries) {
  // Qwen2.5-Instruct's arrangement: EOS <|im_end|>, its own pad token <|endoftext|>.
  testing::TempDir dir("pad_token");
  std::filesystem::copy_file(
      std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests" / "engine" / "fixtures" / "tokenizer_bytelevel_nfc.json",
      dir.path() / "tokenizer.json");
  std::ofstream(dir.path() / "tokenizer_config.json") << R"({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})";
  const auto tokenizer = engine::Tokenizer::load(dir.path());
  const engine::TokenId eos = *tokenizer->token_id("<|im_end|>"), pad = *tokenizer->token_id("<|endoftext|>");
  orchestrator::GenerationSettings kvsafe_default;
  const engine::GenerationOptions plain = generation_options(kvsafe_default, *tokenizer, {});
  EXPECT_EQ(plain.pad_id, eos);
  EXPECT_EQ(plain.padding_queries, engine::PaddingQueries::kAttendAll);
  // The paper profile: the tokenizer's pad token, and zero attention for padding slots.
  const orchestrator::GenerationSettings paper = orchestrator::default_generation(orchestrator::GridProfile::kPaper);
  const engine::GenerationOptions as_paper = generation_options(paper, *tokenizer, {});
  EXPECT_EQ(as_paper.pad_id, pad);
  EXPECT_EQ(as_paper.padding_queries, engine::PaddingQueries::kZero);
  // A tokenizer without a pad token pads with EOS under either rule.
  std::ofstream(dir.path() / "tokenizer_config.json") << R"({"eos_token": "<|im_end|>"})";
  EXPECT_EQ(generation_options(paper, *engine::Tokenizer::load(dir.path()), {}).pad_id, eos);
}

}  // namespace
}  // namespace kvsafe::worker
