// `kvsafe submit` on a real SLURM: each test starts its own single-node cluster (munged,
// slurmctld, slurmd; ../shared/recipes/slurm-local-cluster.sh) in a scratch folder on ports of
// its own, and stops what it started. The grid is stories260K's (tests/integration/fixtures/
// stories_run.yaml: 3 cells x 4 shards of 2 prompts); what a job writes must equal a local
// `mpirun -np 3` run of the same grid.
//   - a submitted job with 3 tasks (rank 0 schedules, 2 workers) gives the same answers;
//   - paths and names with spaces, quotes, `$(...)` and `;` survive the script unexecuted;
//   - a one-minute time limit: USR1 drains the run (exit 75), the script requeues the job, and
//     the requeued job finishes: every shard once, no duplicate row;
//   - scancel --signal=TERM mid-run, then a second submit: the run resumes.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "cluster/shell_quote.h"
#include "common/subprocess.h"
#include "tests/integration/run_harness.h"

namespace kvsafe::testing {
namespace {

namespace fs = std::filesystem;
using cluster::shell_quote;

const fs::path kRecipe = fs::path(KVSAFE_SOURCE_DIR) / ".." / "shared" / "recipes" / "slurm-local-cluster.sh";

// The environment every SLURM command and job of a test gets: the cluster's config, OpenMPI
// as root with more ranks than cores (the recipe's advice), the benchmark data.
std::string job_environment(const fs::path& cluster) {
  return "SLURM_CONF=" + shell_quote((cluster / "etc" / "slurm.conf").string()) +
         " OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1";
}

// Runs a shell command line with the cluster's environment; its output (stdout and stderr).
ProcessResult shell(const fs::path& cluster, const std::string& line, double timeout_s = 120) {
  return run_process({"/bin/bash", "-c", "export " + job_environment(cluster) + "; " + line}, {.timeout_s = timeout_s});
}

class LocalCluster {
 public:
  explicit LocalCluster(fs::path dir) : dir_(std::move(dir)) {
    // Ports of this process's own, so two test processes can run clusters side by side.
    const int base = 20000 + static_cast<int>(::getpid() % 4000) * 2;
    env_ = "SLC_CPUS=8 SLC_CTLD_PORT=" + std::to_string(base) + " SLC_SLURMD_PORT=" + std::to_string(base + 1);
    started_ = run_process(
        {"/bin/bash", "-c", env_ + " bash " + shell_quote(kRecipe.string()) + " start " + shell_quote(dir_.string())},
        {.timeout_s = 90});
  }
  ~LocalCluster() {
    run_process(
        {"/bin/bash", "-c", env_ + " bash " + shell_quote(kRecipe.string()) + " stop " + shell_quote(dir_.string())},
        {.timeout_s = 90});
  }
  bool ok() const { return started_.exit_code == 0; }
  const std::string& log() const { return started_.output; }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  std::string env_;
  ProcessResult started_;
};

// One scontrol field of a job ("" once the job is gone from slurmctld's memory).
std::string job_field(const fs::path& cluster, const std::string& job, const std::string& field) {
  const ProcessResult shown = shell(cluster, "scontrol show job -o " + job + " 2>/dev/null", 30);
  const std::regex pattern("(^| )" + field + "=([^ \n]*)");
  std::smatch match;
  return std::regex_search(shown.output, match, pattern) ? match[2].str() : "";
}

bool finished_state(const std::string& state) {
  return state == "COMPLETED" || state == "FAILED" || state == "CANCELLED" || state == "TIMEOUT" ||
         state == "NODE_FAIL" || state == "OUT_OF_MEMORY";
}

// Waits for the job to end and returns its final state. SLURM holds a requeued job for about two
// minutes (Reason=BeginTime); `release_requeued` makes it eligible after 15 s (an operator's
// `scontrol update StartTime=now`), so the test waits for kvsafe, not for that hold.
std::string wait_for_job(const fs::path& cluster, const std::string& job, std::chrono::seconds timeout,
                         bool release_requeued = false) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string state;
  auto held_since = std::chrono::steady_clock::time_point::max();  // max: not held
  while (std::chrono::steady_clock::now() < deadline) {
    state = job_field(cluster, job, "JobState");
    if (finished_state(state)) {
      // NOTE: a job being requeued passes through a finished state for a moment before it is
      // PENDING again: only a state that holds for two seconds is the end.
      std::this_thread::sleep_for(std::chrono::seconds(2));
      if (job_field(cluster, job, "JobState") == state) return state;
      continue;
    }
    if (release_requeued && state == "PENDING" && job_field(cluster, job, "Reason") == "BeginTime") {
      // NOTE: not at once: a step launched a second after the requeue fails ("aborted before
      // step completely launched") while slurmd still cleans up the previous one.
      const auto now = std::chrono::steady_clock::now();
      if (held_since == std::chrono::steady_clock::time_point::max()) held_since = now;
      if (now - held_since > std::chrono::seconds(15)) {
        shell(cluster, "scontrol update JobId=" + job + " StartTime=now", 30);
        held_since = std::chrono::steady_clock::time_point::max();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return "timed out in " + state;
}

// `kvsafe submit` of `grid` into `db` with 3 tasks on the CPU-only local cluster; the job id.
std::string submit(const fs::path& cluster, const fs::path& grid, const fs::path& db, const std::string& flags = "",
                   const std::string& environment = "") {
  const ProcessResult submitted =
      shell(cluster, "export OMP_WAIT_POLICY=passive KVSAFE_DATA=" +
                         shell_quote(std::string(KVSAFE_SOURCE_DIR) + "/../shared/datasets") + " " + environment +
                         "; " + shell_quote(kvsafe_binary()) + " submit " + shell_quote(grid.string()) + " --db " +
                         shell_quote(db.string()) + " --partition debug --gpus-per-node 0 --tasks-per-node 3 " + flags +
                         " 2>" + shell_quote((db.parent_path() / "submit.err").string()));
  EXPECT_EQ(submitted.exit_code, 0) << submitted.output << slurp(db.parent_path() / "submit.err");
  std::string job = submitted.output;
  job.erase(job.find_last_not_of(" \n") + 1);
  EXPECT_TRUE(std::regex_match(job, std::regex("[0-9]+"))) << "job id: '" << job << "'";
  return job;
}

// The rows of a local `mpirun -np 3` run of the same grid.
std::vector<GenerationKey> mpirun_rows(const fs::path& dir) {
  const auto db = dir / "mpirun.db";
  const Finished done = run_to_end(mpirun(3) + run_command(db), "", dir / "mpirun.err");
  EXPECT_EQ(done.exit_code, 0) << done.err;
  return generation_rows(db);
}

class Slurm : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* program : {"sbatch", "slurmctld", "slurmd", "munged"}) {
      if (find_on_path(program).empty() && !fs::exists(std::string("/usr/sbin/") + program)) {
        if (std::getenv("CI") != nullptr)
          FAIL() << program << " is missing: scripts/setup installs slurm-wlm and munge";
        GTEST_SKIP() << program << " not installed (scripts/setup installs slurm-wlm and munge)";
      }
    }
    // NOTE: a short folder of its own: munged's socket path must fit in 108 bytes.
    std::string dir = "/tmp/slc-XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    cluster_dir_ = dir;
    cluster_ = std::make_unique<LocalCluster>(cluster_dir_);
    ASSERT_TRUE(cluster_->ok()) << cluster_->log();
  }
  void TearDown() override {
    cluster_.reset();
    std::error_code ignored;
    if (!cluster_dir_.empty()) fs::remove_all(cluster_dir_, ignored);
  }
  const fs::path& cluster() const { return cluster_->dir(); }

  ScratchDir scratch_;
  fs::path cluster_dir_;
  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(Slurm, ASubmittedJobWritesWhatMpirunWrites) {
  const auto db = scratch_.path() / "slurm.db";
  const std::string job = submit(cluster(), run_fixture("stories_run.yaml"), db);
  EXPECT_EQ(wait_for_job(cluster(), job, std::chrono::seconds(120)), "COMPLETED")
      << slurp(scratch_.path() / "slurm.slurm" / ("slurm-" + job + ".out"));
  EXPECT_EQ(generation_rows(db), mpirun_rows(scratch_.path()));
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'done'"), kShards);
  // The run recorded its job: id, 3 ranks, the node, no requeue.
  EXPECT_EQ(count(db, "SELECT count(*) FROM runs WHERE slurm_job_id = '" + job + "' AND ranks = 3 AND exit_code = 0"),
            1);
  EXPECT_EQ(count(db, "SELECT json_extract(slurm_json, '$.restart_count') FROM runs"), 0);
  EXPECT_EQ(count(db, "SELECT json_extract(slurm_json, '$.tasks') FROM runs"), 3);
  const ProcessResult status = shell(cluster(), shell_quote(kvsafe_binary()) + " status " + shell_quote(db.string()));
  EXPECT_NE(status.output.find("SLURM jobs"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("  " + job + " "), std::string::npos) << status.output;
}

TEST_F(Slurm, PathsWithQuotesSpacesAndCommandSubstitutionSurvive) {
  // A folder and grid file whose names a careless script would split or execute.
  const fs::path odd = scratch_.path() / "it's a \"dir\" $(touch PWNED); x";
  fs::create_directories(odd);
  std::string text = slurp(run_fixture("stories_run.yaml"));
  const std::string relative = "../../../../shared/models/stories260K/stories260K.gguf";
  text.replace(text.find(relative), relative.size(),
               (fs::path(KVSAFE_SOURCE_DIR) / ".." / "shared" / "models" / "stories260K" / "stories260K.gguf")
                   .lexically_normal()
                   .string());
  const fs::path grid = odd / "grid `touch PWNED` $HOME.yaml";
  std::ofstream(grid) << text;
  const fs::path db = odd / "res ults $(id).db";
  const std::string job = submit(cluster(), grid, db);
  EXPECT_EQ(wait_for_job(cluster(), job, std::chrono::seconds(120)), "COMPLETED")
      << slurp(odd / "res ults $(id).slurm" / ("slurm-" + job + ".out"));
  EXPECT_TRUE(fs::exists(odd / "res ults $(id).slurm" / "job.sbatch"));
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'done'"), kShards);
  for (const fs::path& where : {scratch_.path(), odd, fs::current_path(), cluster()}) {
    EXPECT_FALSE(fs::exists(where / "PWNED")) << where;
  }
}

TEST_F(Slurm, ATimeLimitDrainsRequeuesAndTheRequeuedJobFinishes) {
  // Each shard starts 6 s late: 12 shards on 2 workers need about 40 s, more than the ~30 s a
  // one-minute job runs before SLURM's USR1 (the drain lead is half the limit).
  const auto db = scratch_.path() / "limit.db";
  const std::string job =
      submit(cluster(), run_fixture("stories_run.yaml"), db, "--time 1 --requeue 3", "KVSAFE_FAULT=delay:ms=6000");
  const std::string out = (scratch_.path() / "limit.slurm" / ("slurm-" + job + ".out")).string();
  EXPECT_EQ(wait_for_job(cluster(), job, std::chrono::seconds(420), /*release_requeued=*/true), "COMPLETED")
      << slurp(out);
  EXPECT_GE(std::stoi(job_field(cluster(), job, "Restarts")), 1) << slurp(out);
  EXPECT_NE(slurp(out).find("requeueing job " + job), std::string::npos) << slurp(out);
  // The first run drained (exit 75, shards left); a later one, in the requeued job, finished.
  EXPECT_EQ(count(db, "SELECT exit_code FROM runs ORDER BY id LIMIT 1"), kExitInterrupted);
  EXPECT_EQ(count(db, "SELECT exit_code FROM runs ORDER BY id DESC LIMIT 1"), 0);
  EXPECT_GE(count(db, "SELECT max(json_extract(slurm_json, '$.restart_count')) FROM runs"), 1);
  EXPECT_EQ(count(db, "SELECT count(DISTINCT slurm_job_id) FROM runs"), 1);
  // Every shard once, no duplicate, nothing lost: the same rows as mpirun.
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'done'"), kShards);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations);
  EXPECT_EQ(generation_rows(db), mpirun_rows(scratch_.path()));
}

TEST_F(Slurm, ScancelMidRunThenResubmitResumes) {
  const auto db = scratch_.path() / "cancel.db";
  const std::string first =
      submit(cluster(), run_fixture("stories_run.yaml"), db, "--requeue 0", "KVSAFE_FAULT=delay:ms=2000");
  ASSERT_TRUE(wait_for_count(db, "SELECT count(*) FROM shards WHERE status = 'done'", 2, std::chrono::seconds(90)));
  shell(cluster(), "scancel --signal=TERM " + first);
  const std::string ended = wait_for_job(cluster(), first, std::chrono::seconds(90));
  EXPECT_TRUE(finished_state(ended)) << ended;
  const std::int64_t done_before = count(db, "SELECT count(*) FROM shards WHERE status = 'done'");
  EXPECT_LT(done_before, kShards);
  const std::string second = submit(cluster(), run_fixture("stories_run.yaml"), db);
  EXPECT_EQ(wait_for_job(cluster(), second, std::chrono::seconds(120)), "COMPLETED");
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'done'"), kShards);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations);
  EXPECT_EQ(count(db, "SELECT count(DISTINCT slurm_job_id) FROM runs"), 2);
  EXPECT_EQ(generation_rows(db), mpirun_rows(scratch_.path()));
}

}  // namespace
}  // namespace kvsafe::testing
