// `kvsafe generate` as users run it, on stories260K (a real tiny Llama, no chat template:
// --raw): the streamed answer is the engine's greedy continuation, --compare streams both
// answers and says where they diverge, and bad arguments fail before any model loads.

#include <gtest/gtest.h>

#include "engine/generator.h"
#include "engine/model.h"
#include "engine/quantized_kv_path.h"
#include "kernels/kv_quant_spec.h"
#include "tests/cli/cli_process.h"
#include "tests/testing/model_files.h"
#include "text/tokenizer.h"

namespace kvsafe::testing {
namespace {

// What the engine generates greedily for `text`, decoded as the CLI prints it.
std::string engine_answer(const std::string& text, const std::string& label, std::int64_t max_new) {
  const auto model = engine::Model::load(stories260k_gguf_path());
  const auto tokenizer = engine::Tokenizer::load(stories260k_gguf_path());
  const auto path = engine::make_kv_path(kernels::parse_kv_label(label));
  engine::Generator generator(*model);
  const auto out =
      generator.generate({tokenizer->encode(text)}, {.max_new_tokens = max_new,
                                                     .batch_size = 1,
                                                     .stop_tokens = engine::default_stop_tokens(*tokenizer),
                                                     .pad_id = tokenizer->eos_id().value_or(0),
                                                     .kv_path = path.get()});
  return tokenizer->decode(out.at(0).tokens, {.skip_special = true});
}

const std::string kModel = stories260k_gguf_path().string();

TEST(GenerateCommand, StreamsTheEnginesGreedyAnswer) {
  const ProcessResult result =
      run_kvsafe("generate --model " + kModel + " --raw --max-new-tokens 24 'Once upon a time'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, engine_answer("Once upon a time", "none", 24) + "\n");
  EXPECT_NE(result.err.find("kv none"), std::string::npos) << result.err;
}

TEST(GenerateCommand, QuantizedAnswerIsTheEnginesQuantizedAnswer) {
  const ProcessResult result =
      run_kvsafe("generate --model " + kModel + " --raw --kv int2-ptok-asym --max-new-tokens 24 'Once upon a time'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, engine_answer("Once upon a time", "int2-ptok-asym", 24) + "\n");
}

TEST(GenerateCommand, CompareStreamsBothAndSaysWhereTheyDiverge) {
  const ProcessResult result = run_kvsafe(
      "generate --model " + kModel + " --raw --kv int2-ptok-asym --compare --max-new-tokens 24 'Once upon a time'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string full = engine_answer("Once upon a time", "none", 24);
  const std::string quantized = engine_answer("Once upon a time", "int2-ptok-asym", 24);
  ASSERT_NE(full, quantized) << "2-bit keys should change stories260K's answer";
  EXPECT_EQ(result.out.rfind("== full precision (none) ==\n" + full + "\n== int2-ptok-asym ==\n" + quantized + "\n", 0),
            0u)
      << result.out;
  EXPECT_NE(result.out.find("== answers diverge at token "), std::string::npos) << result.out;
}

TEST(GenerateCommand, BadArgumentsFailBeforeLoading) {
  const ProcessResult label = run_kvsafe("generate --model /nowhere.gguf --kv int9-ptok-asym hello");
  EXPECT_EQ(label.exit_code, 1);
  EXPECT_NE(label.err.find("int9"), std::string::npos) << label.err;
  const ProcessResult compare = run_kvsafe("generate --model " + kModel + " --compare hello");
  EXPECT_EQ(compare.exit_code, 1);
  EXPECT_NE(compare.err.find("--compare needs a quantizer"), std::string::npos) << compare.err;
  const ProcessResult raw = run_kvsafe("generate --model " + kModel + " --raw --system hi hello");
  EXPECT_EQ(raw.exit_code, 1);
  EXPECT_NE(raw.err.find("--raw"), std::string::npos) << raw.err;
  const ProcessResult missing = run_kvsafe("generate --model /nowhere/model.gguf hello");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/nowhere/model.gguf"), std::string::npos) << missing.err;
}

TEST(GenerateCommand, ModelWithoutChatTemplateAsksForRawOrTemplate) {
  const ProcessResult result = run_kvsafe("generate --model " + kModel + " hello");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("template"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace kvsafe::testing
