// `kvsafe plan` on the real grids of experiments/, on broken grids, and against a
// database that already holds finished cells.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/cli/cli_process.h"
#include "tests/cli/test_database.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::testing {
namespace {

namespace fs = std::filesystem;

TEST(PlanCommand, PaperGridListsEveryModelWithItsCost) {
  const ProcessResult result = run_kvsafe("plan experiments/paper.yaml --gpus 64");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (const char* model : {"phi3.5-mini", "qwen2.5-7b", "mistral-7b", "deepseek-7b", "llama3.1-8b", "yi1.5-9b",
                            "gemma2-9b", "mistral-small-24b", "yi1.5-34b", "qwen2.5-72b", "mixtral-8x7b"}) {
    EXPECT_NE(result.out.find(model), std::string::npos) << model << "\n" << result.out;
  }
  EXPECT_NE(result.out.find("makespan on 64 x h100"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("GPU-h"), std::string::npos);
  EXPECT_NE(result.out.find("0 of "), std::string::npos);  // no database yet: nothing done
}

TEST(PlanCommand, SlurmSaysWhetherTheTimeLimitHoldsTheMakespan) {
  // The paper grid on its 64 GPUs fits one 48 h job; on 4 GPUs (one node) its ~4 days need three.
  const ProcessResult all = run_kvsafe("plan experiments/paper.yaml --slurm");
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.out.find("slurm: 8 node(s) x 8 GPU(s), time 48:00:00"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("the time limit holds the makespan"), std::string::npos) << all.out;
  const ProcessResult four = run_kvsafe("plan experiments/paper.yaml --slurm --gpus 4");
  EXPECT_EQ(four.exit_code, 0) << four.err;
  EXPECT_NE(four.out.find("slurm: 1 node(s) x 8 GPU(s)"), std::string::npos) << four.out;
  EXPECT_NE(four.out.find("needs 3 jobs: 2 requeue(s)"), std::string::npos) << four.out;
  EXPECT_EQ(run_kvsafe("plan experiments/paper.yaml").out.find("slurm:"), std::string::npos);
}

TEST(PlanCommand, GpusDefaultToTheSlurmSection) {
  // paper.yaml asks for nodes x gpus_per_node GPUs; the plan uses them unless --gpus is given.
  const ProcessResult result = run_kvsafe("plan experiments/paper.yaml");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out.find("makespan on 1 x"), std::string::npos) << result.out;
}

TEST(PlanCommand, CountsCellsAlreadyDoneInTheDatabase) {
  TempDir dir("plan");
  const fs::path db = dir / "quick.db";
  {
    GridDatabase grid = register_grid_file(KVSAFE_SOURCE_DIR "/tests/cli/fixtures/cli_grid.yaml", db);
    ASSERT_GE(grid.cells.size(), 2u);
    finish_cell(*grid.store, grid.cells[0], 4);  // cli_grid.yaml: shard_size 4
  }
  const ProcessResult result =
      run_kvsafe("plan tests/cli/fixtures/cli_grid.yaml --device cpu --gpus 1 --cells --db " + db.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("1 of "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(" done\n"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(" to do\n"), std::string::npos) << result.out;
}

// A model folder's generation_config.json is shown with whether the grid applies it (issue 20).
TEST(PlanCommand, ShowsTheModelsGenerationConfig) {
  TempDir dir("plan");
  fs::create_directories(dir / "qwen");
  std::ofstream(dir / "qwen" / "generation_config.json")
      << R"({"eos_token_id": [151645, 151643], "repetition_penalty": 1.05, "top_k": 20})";
  const fs::path grid = dir / "g.yaml";
  std::ofstream(grid) << "name: g\nprofile: paper\nmodels: [{name: qwen, path: " << (dir / "qwen").string()
                      << ", params: 7B}]\nkv_cache: [{scheme: none}]\nbenchmarks: [advbench]\n";
  const ProcessResult result = run_kvsafe("plan " + grid.string() + " --gpus 1");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("qwen: generation_config.json: repetition_penalty 1.05, eos [151645, 151643], top_k 20 "
                            "(applied: generation.generation_config: model)"),
            std::string::npos)
      << result.out;
}

// A CPU-only slurm section (gpus_per_node 0) still plans on one device, and --slurm uses its nodes.
TEST(PlanCommand, ACpuOnlySlurmSectionPlans) {
  TempDir dir("plan");
  fs::create_directories(dir / "m");
  const fs::path grid = dir / "g.yaml";
  std::ofstream(grid) << "name: g\nmodels: [{name: m, path: " << (dir / "m").string()
                      << ", params: 135M}]\nkv_cache: [{scheme: none}]\nbenchmarks: [advbench]\n"
                         "slurm: {partition: cpu, nodes: 2, gpus_per_node: 0, time: \"1:00:00\"}\n";
  const ProcessResult result = run_kvsafe("plan " + grid.string() + " --slurm --device cpu");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("makespan on 1 x cpu"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("slurm: 2 node(s) x 0 GPU(s), time 1:00:00"), std::string::npos) << result.out;
}

TEST(PlanCommand, BrokenGridGetsEveryErrorWithItsLocation) {
  TempDir dir("plan");
  const fs::path grid = dir / "bad.yaml";
  std::ofstream(grid) << "name: bad\n"
                         "models:\n"
                         "  - name: m\n"
                         "    path: /nowhere/m.gguf\n"
                         "    params: 1B\n"
                         "kv_cache:\n"
                         "  - scheme: int\n"
                         "    bitz: 4\n"
                         "benchmarks:\n"
                         "  - name: advbenchh\n";
  const ProcessResult result = run_kvsafe("plan " + grid.string());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(grid.string() + ":8:5: kv_cache[0].bitz"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("did you mean `bits`?"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("did you mean `advbench`?"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(grid.string() + ":10:11: benchmarks[0].name"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("nothing planned"), std::string::npos);
  EXPECT_TRUE(result.out.empty()) << result.out;
}

TEST(PlanCommand, ModelWithoutParameterCountIsNamed) {
  TempDir dir("plan");
  const fs::path grid = dir / "noparams.yaml";
  std::ofstream(grid) << "name: noparams\n"
                         "models:\n"
                         "  - name: mystery-model\n"
                         "    path: /nowhere/m.gguf\n"
                         "kv_cache:\n"
                         "  - scheme: none\n"
                         "benchmarks:\n"
                         "  - name: advbench\n";
  const ProcessResult result = run_kvsafe("plan " + grid.string());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("mystery-model"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("params:"), std::string::npos) << result.err;
}

TEST(PlanCommand, DiagnosisCellsArePlannedAndThoseToBeDerivedEstimated) {
  // experiments/diagnose-smollm2.yaml names the layer count (30), so no model file is needed.
  // Planned now beside the grid's one cell (which is the calibration baseline itself): 30
  // ablation cells, the test set's baseline, 3 validation arms, the unprotected arm, the key
  // magnitudes (protection's key-norm baseline ranks layers by them) and 2 mitigation strategies
  // (the third, uniform per-token, is the unprotected arm's cell).
  TempDir dir("plan");
  const ProcessResult result =
      run_kvsafe("plan experiments/diagnose-smollm2.yaml --device cpu --gpus 1 --db " + (dir / "none.db").string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("-> 1 cells"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("diagnosis (layer_ablation, pcr, pcr_validation, protection_sweep, mitigation): 38 more "
                            "cell(s) planned now"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("to be derived from stored results"), std::string::npos) << result.out;
}

TEST(PlanCommand, UnknownDeviceIsRefusedWithTheKnownOnes) {
  const ProcessResult result = run_kvsafe("plan experiments/quickstart.yaml --device tpu");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("h100, h200, a100, l40s, cpu"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace kvsafe::testing
