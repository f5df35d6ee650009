// ifeval shards on stories260K (a real tiny Llama; llama-2 template) over IFEval's real prompts
// from ../shared/datasets: each answer is judged for refusal like any benign prompt and scored
// against its own prompt's instructions, one verdict row per instruction.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <string>

#include "common/environment.h"
#include "eval/benchmark_registry.h"
#include "eval/ifeval_instructions.h"
#include "kernels/kv_quant_spec.h"
#include "tests/testing/model_files.h"
#include "worker/shard_executor.h"

namespace kvsafe::worker {
namespace {

std::filesystem::path data_dir() {
  return Environment::from_process().data_dir;
}

orchestrator::Cell ifeval_cell(const std::string& kv, std::int64_t prompts) {
  orchestrator::Cell cell;
  cell.id = "0123456789abcdef-ifeval-" + kv;
  cell.model.name = "stories260k";
  cell.model.path = testing::stories260k_gguf_path();
  cell.model.chat_template = "llama-2";
  cell.kv = kernels::parse_kv_label(kv);
  cell.kv_label = kv;
  cell.benchmark.name = "ifeval";
  cell.benchmark.task = orchestrator::Task::kIfeval;
  cell.benchmark.limit = prompts;
  cell.generation = orchestrator::GenerationSettings{.max_new_tokens = 24, .batch_size = 2};
  cell.n_prompts = prompts;
  return cell;
}

class IfevalShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::stories260k_gguf_path()) ||
        !std::filesystem::exists(data_dir() / "ifeval" / "input_data.jsonl")) {
      GTEST_SKIP() << "stories260K or ../shared/datasets/ifeval missing";
    }
    const Status status = eval::load_benchmark("ifeval", data_dir(), {}, &ifeval_);
    ASSERT_TRUE(status.is_ok()) << status.message();
  }
  eval::Benchmark ifeval_;
  ShardExecutor executor_{{.data_dir = data_dir(), .threads = 1}};
};

// Each prompt's rows follow its own instruction list in order, and carry the verdicts of that
// prompt's instructions on that prompt's stored answer.
TEST_F(IfevalShardTest, EveryInstructionOfEveryAnswerIsScored) {
  const db::ShardResult result = executor_.run(ifeval_cell("int4-ptok-asym", 6), 2, 6);
  ASSERT_EQ(result.generations.size(), 4U);
  std::size_t row = 0;
  for (const db::GenerationRow& answer : result.generations) {
    const eval::Prompt& prompt = ifeval_.prompts.at(static_cast<std::size_t>(answer.prompt_index));
    EXPECT_EQ(answer.prompt_id, prompt.prompt_id);
    ASSERT_TRUE(answer.refused.has_value());
    EXPECT_FALSE(nlohmann::json::parse(answer.judge_json).at("harmful").get<bool>());
    const auto instructions = eval::ifeval::instructions_from_input(nlohmann::json::parse(prompt.ifeval_instructions));
    for (std::size_t k = 0; k < instructions.size(); ++k, ++row) {
      ASSERT_LT(row, result.ifeval_verdicts.size());
      const db::IfevalVerdictRow& verdict = result.ifeval_verdicts[row];
      EXPECT_EQ(verdict.prompt_index, answer.prompt_index);
      EXPECT_EQ(verdict.instruction_index, static_cast<std::int64_t>(k));
      EXPECT_EQ(verdict.instruction_id, instructions[k].id);
      EXPECT_EQ(verdict.strict, eval::ifeval::follows_strict(instructions[k], answer.output_text));
      EXPECT_EQ(verdict.loose, eval::ifeval::follows_loose(instructions[k], answer.output_text));
      if (instructions[k].id == "punctuation:no_comma") {  // an oracle anyone can write
        const bool blank = answer.output_text.find_first_not_of(" \t\r\n") == std::string::npos;
        EXPECT_EQ(verdict.strict, !blank && answer.output_text.find(',') == std::string::npos);
      }
    }
  }
  EXPECT_EQ(row, result.ifeval_verdicts.size());
}

// IFEval key 1122 asks for the "letter" '#': the reference would draw a random letter, so that
// instruction is stored unscored, with why, and the shard and the prompt's other rows go on.
TEST_F(IfevalShardTest, AnUnscorableInstructionCostsOnlyItself) {
  const auto it = std::find_if(ifeval_.prompts.begin(), ifeval_.prompts.end(),
                               [](const eval::Prompt& p) { return p.prompt_id == "ifeval-1122"; });
  ASSERT_NE(it, ifeval_.prompts.end());
  const auto index = static_cast<std::int64_t>(it - ifeval_.prompts.begin());
  const db::ShardResult result = executor_.run(ifeval_cell("none", index + 1), index, index + 1);
  ASSERT_EQ(result.generations.size(), 1U);
  ASSERT_FALSE(result.ifeval_verdicts.empty());
  int unscored = 0;
  for (const db::IfevalVerdictRow& verdict : result.ifeval_verdicts) {
    if (verdict.instruction_id == "keywords:letter_frequency") {
      ++unscored;
      EXPECT_FALSE(verdict.strict.has_value());
      EXPECT_FALSE(verdict.loose.has_value());
      EXPECT_NE(verdict.unscored.find("letter"), std::string::npos) << verdict.unscored;
    } else {
      EXPECT_TRUE(verdict.strict.has_value()) << verdict.instruction_id;
    }
  }
  EXPECT_EQ(unscored, 1);
}

}  // namespace
}  // namespace kvsafe::worker
