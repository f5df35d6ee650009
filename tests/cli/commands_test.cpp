// The kvsafe command as users meet it: help, version, exit codes and logging.

#include <gtest/gtest.h>

#include <string>

#include "tests/cli/cli_process.h"

namespace kvsafe::testing {
namespace {

TEST(Cli, HelpListsEverySubcommand) {
  const ProcessResult result = run_kvsafe("--help");
  EXPECT_EQ(result.exit_code, 0);
  for (const char* name : {"run", "submit", "status", "query", "tables", "diagnose", "generate", "plan", "datasets",
                           "quantize", "merge", "tokenize", "judge"}) {
    EXPECT_NE(result.out.find(std::string("\n  ") + name), std::string::npos) << name << "\n" << result.out;
  }
}

TEST(Cli, VersionNamesCommitCompilerAndLibraries) {
  const ProcessResult result = run_kvsafe("--version");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.out.find("kvsafe 0."), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("git commit:"), std::string::npos);
  EXPECT_NE(result.out.find("compiler:"), std::string::npos);
  EXPECT_NE(result.out.find("libtorch:"), std::string::npos);
  EXPECT_NE(result.out.find("sqlite:"), std::string::npos);
}

TEST(Cli, SubmitDryRunPrintsThePapersScript) {
  // The paper grid's slurm section: 8 nodes x 8 GPUs, 48 h, --qos=normal; its 120 s grace
  // period plus 60 s for SLURM's coarse signal timer before the limit.
  const ProcessResult result = run_kvsafe("submit experiments/paper.yaml --dry-run --requeue 5");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  for (const char* line : {"#!/bin/bash\n", "#SBATCH --job-name=kvsafe-paper\n", "#SBATCH --nodes=8\n",
                           "#SBATCH --ntasks-per-node=8\n", "#SBATCH --gpus-per-task=1\n", "#SBATCH --time=48:00:00\n",
                           "#SBATCH --partition=gpu\n", "#SBATCH --signal=B:USR1@180\n", "#SBATCH --requeue\n",
                           "#SBATCH --qos=normal\n", "requeue_limit=5\n", "srun --mpi=pmix"}) {
    EXPECT_NE(result.out.find(line), std::string::npos) << line << " not in:\n" << result.out;
  }
  EXPECT_NE(result.out.find("experiments/paper.yaml --db "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("results/paper.db"), std::string::npos) << result.out;
  // A bad time limit is a usage error.
  EXPECT_EQ(run_kvsafe("submit experiments/paper.yaml --dry-run --time soon").exit_code, 64);
}

TEST(Cli, BadCommandLineIsAUsageError) {
  EXPECT_EQ(run_kvsafe("--no-such-flag plan x").exit_code, 64);
  EXPECT_EQ(run_kvsafe("").exit_code, 64);
  EXPECT_EQ(run_kvsafe("--log-format xml plan experiments/quickstart.yaml").exit_code, 64);
  const ProcessResult missing = run_kvsafe("query");
  EXPECT_EQ(missing.exit_code, 64);
  EXPECT_NE(missing.err.find("db"), std::string::npos) << missing.err;
}

TEST(Cli, JsonLogLinesAreJsonObjects) {
  const ProcessResult result =
      run_kvsafe("--log-format json -v plan experiments/quickstart.yaml --gpus 1 --device cpu");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ASSERT_FALSE(result.err.empty());
  std::size_t start = 0;
  while (start < result.err.size()) {
    const std::size_t end = result.err.find('\n', start);
    const std::string line = result.err.substr(start, end - start);
    EXPECT_EQ(line.rfind("{\"time\":\"", 0), 0u) << line;
    EXPECT_EQ(line.back(), '}') << line;
    start = end == std::string::npos ? result.err.size() : end + 1;
  }
}

}  // namespace
}  // namespace kvsafe::testing

namespace kvsafe::testing {
namespace {

// stories260K's golden ids (../shared/models/stories260K/PROVENANCE.md): BOS + 4 pieces.
const std::string kStories = KVSAFE_SOURCE_DIR "/../shared/models/stories260K/stories260K.gguf";

TEST(TokenizeCommand, EncodesAndDecodesTheGoldenPrompt) {
  const ProcessResult encoded = run_kvsafe("tokenize --model " + kStories + " \"Once upon a time\"");
  ASSERT_EQ(encoded.exit_code, 0) << encoded.err;
  EXPECT_EQ(encoded.out, "1 403 407 261 378\n");
  const ProcessResult decoded =
      run_kvsafe("tokenize --model " + kStories + " --ids \"1 403 407 261 378\" --skip-special");
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  EXPECT_EQ(decoded.out, "Once upon a time\n");
}

TEST(TokenizeCommand, MissingModelIsNamed) {
  const ProcessResult result = run_kvsafe("tokenize --model /nowhere/model.gguf hello");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("/nowhere/model.gguf"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace kvsafe::testing

namespace kvsafe::testing {
namespace {

const std::string kSharedData = "KVSAFE_DATA=" KVSAFE_SOURCE_DIR "/../shared/datasets";

TEST(DatasetsCommand, ListsTheRealCountsAndVerifiesTheSharedData) {
  const ProcessResult list = run_kvsafe("datasets list", kSharedData);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("advbench            520     520"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("xstest              450     200     250"), std::string::npos) << list.out;
  const ProcessResult verify = run_kvsafe("datasets verify", kSharedData);
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("0 mismatched, 0 missing"), std::string::npos) << verify.out;
}

TEST(DatasetsCommand, VerifyFailsOnAMissingDataDirectory) {
  const ProcessResult verify = run_kvsafe("datasets verify", "KVSAFE_DATA=/nonexistent/kvsafe-data");
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.out.find("MISSING   advbench/harmful_behaviors.csv"), std::string::npos) << verify.out;
}

}  // namespace
}  // namespace kvsafe::testing
