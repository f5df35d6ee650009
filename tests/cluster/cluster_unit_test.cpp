// cluster/ without a cluster: quoting checked by a real shell (the quoted word comes back as the
// same bytes and nothing in it runs), SLURM times, the job from SLURM_* variables, and the
// generated script checked by bash's parser. The scripts' behaviour under a real SLURM is in
// slurm_test.cpp.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cluster/job_history.h"
#include "cluster/sbatch_script.h"
#include "cluster/shell_quote.h"
#include "cluster/slurm_fit.h"
#include "cluster/slurm_job.h"
#include "cluster/slurm_time.h"
#include "common/error.h"
#include "common/subprocess.h"
#include "db/store.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::cluster {
namespace {

const std::vector<std::string> kNastyWords = {
    "plain",         "with space",    "it's",        "\"double\"", "$HOME", "$(touch PWNED)",
    "`touch PWNED`", "a;touch PWNED", "back\\slash", "tab\there",  "*",     "",
    "ünïcode ✓",     "--flag=x y",    "'",           "''"};

TEST(ShellQuote, AShellGetsTheSameBytesBackAndRunsNothing) {
  testing::TempDir dir("shell_quote");
  for (const std::string& word : kNastyWords) {
    const ProcessResult result =
        run_process({"/bin/sh", "-c", "cd " + shell_quote(dir.path().string()) + " && printf %s " + shell_quote(word)});
    EXPECT_EQ(result.exit_code, 0) << word;
    EXPECT_EQ(result.output, word);
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "PWNED"));
  EXPECT_EQ(shell_quote("/a/b-c_d.yaml"), "/a/b-c_d.yaml");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
}

TEST(SbatchQuote, DoubleQuotesWithEscapesAndNoLineBreaks) {
  EXPECT_EQ(sbatch_quote("gpu"), "gpu");
  EXPECT_EQ(sbatch_quote("my job"), "\"my job\"");
  EXPECT_EQ(sbatch_quote("say \"hi\" \\ $x"), "\"say \\\"hi\\\" \\\\ $x\"");
  EXPECT_THROW(sbatch_quote("two\nlines"), InputError);
}

TEST(SlurmTime, EveryFormSbatchAccepts) {
  EXPECT_EQ(slurm_time_seconds("90"), 90 * 60);
  EXPECT_EQ(slurm_time_seconds("1:30"), 90);
  EXPECT_EQ(slurm_time_seconds("24:00:00"), 86400);
  EXPECT_EQ(slurm_time_seconds("2-00:00:00"), 2 * 86400);
  EXPECT_EQ(slurm_time_seconds("1-2"), 86400 + 7200);
  EXPECT_EQ(slurm_time_seconds("1-2:30"), 86400 + 7200 + 1800);
  for (const char* bad : {"", "x", "1:2:3:4", "-5", "1-", "infinite", "1-2:3:4:5"}) {
    EXPECT_EQ(slurm_time_seconds(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(format_slurm_time(3725), "01:02:05");
  EXPECT_EQ(format_slurm_time(2 * 86400 + 60), "2-00:01:00");
  // The drain signal: the grace period plus 60 s for SLURM's coarse signal timer, at most half the limit.
  EXPECT_EQ(drain_signal_lead_s("48:00:00", 120), 180);
  EXPECT_EQ(drain_signal_lead_s("1", 120), 30);
  EXPECT_EQ(drain_signal_lead_s("nonsense", 20), 80);
}

TEST(SlurmJob, FromTheVariablesAndThroughJson) {
  const SlurmJob job = slurm_job_from({{"SLURM_JOB_ID", "4242"},
                                       {"SLURM_JOB_NAME", "kvsafe-paper"},
                                       {"SLURM_RESTART_COUNT", "2"},
                                       {"SLURM_JOB_NODELIST", "gpu[01-04]"},
                                       {"SLURM_JOB_NUM_NODES", "4"},
                                       {"SLURM_NTASKS", "32"},
                                       {"SLURM_PROCID", "0"},
                                       {"SLURM_JOB_PARTITION", "gpu"},
                                       {"SLURM_CLUSTER_NAME", "lab"},
                                       {"SLURM_NODEID", "not read"}});
  EXPECT_TRUE(job.in_slurm());
  EXPECT_EQ(job.restart_count, 2);
  EXPECT_EQ(job.nodes, 4);
  EXPECT_EQ(job.tasks, 32);
  EXPECT_EQ(job.node_list, "gpu[01-04]");
  EXPECT_EQ(slurm_job_from_json(to_json(job)), job);
  // Outside SLURM: nothing, and {}.
  EXPECT_FALSE(slurm_job_from({{"SLURM_NTASKS", "3"}}).in_slurm());
  EXPECT_EQ(to_json(SlurmJob{}), "{}");
  EXPECT_EQ(slurm_job_from_json("{}"), SlurmJob{});
  // A number that does not parse keeps its default; broken JSON is an error.
  EXPECT_EQ(slurm_job_from({{"SLURM_JOB_ID", "1"}, {"SLURM_RESTART_COUNT", "x"}}).restart_count, 0);
  EXPECT_THROW(slurm_job_from_json("{oops"), InputError);
}

TEST(SlurmFit, OneJobOrRequeues) {
  // 10 h of makespan on 8 nodes under a 4 h limit with a 3 min lead: 80 node-hours, 3 jobs.
  const SlurmFit fit = slurm_fit(10 * 3600.0, 8, 4 * 3600, 180);
  EXPECT_DOUBLE_EQ(fit.node_hours, 80.0);
  EXPECT_DOUBLE_EQ(fit.useful_s_per_job, 4 * 3600 - 180);
  EXPECT_EQ(fit.jobs, 3);
  EXPECT_EQ(fit.requeues, 2);
  EXPECT_FALSE(fit.fits);
  EXPECT_TRUE(slurm_fit(3600, 1, 2 * 3600, 180).fits);
  EXPECT_EQ(slurm_fit(0, 1, 60, 30).jobs, 0);
  // A lead longer than the limit still leaves a minute of work per job.
  EXPECT_EQ(slurm_fit(600, 1, 60, 120).jobs, 10);
}

TEST(JobHistory, ARequeuedJobIsOneJobAndClustersKeepTheirIds) {
  testing::TempDir dir("job_history");
  const auto path = dir.path() / "results.db";
  {
    auto store = db::Store::open(path);
    const auto run = [&](const std::string& cluster, std::int64_t restarts, int exit_code, const char* status) {
      const SlurmJob job{.job_id = "7",
                         .job_name = "kvsafe-t",
                         .restart_count = restarts,
                         .node_list = "gpu[1-2]",
                         .nodes = 2,
                         .tasks = 16,
                         .procid = 0,
                         .partition = "gpu",
                         .cluster = cluster};
      const std::int64_t id = store->begin_run({.command_line = "kvsafe run",
                                                .hosts = {"gpu1"},
                                                .ranks = 16,
                                                .slurm_job_id = "7",
                                                .slurm_json = to_json(job)});
      store->end_run(id, exit_code, status);
    };
    run("a", 0, 75, "stopped");
    run("a", 1, 0, "done");
    run("b", 0, 1, "failed");  // the same id on another cluster (a merged database)
    (void)store->begin_run({.command_line = "kvsafe run", .hosts = {"laptop"}, .ranks = 1});  // not SLURM
  }
  const std::vector<JobHistory> jobs = slurm_job_history(path);
  ASSERT_EQ(jobs.size(), 2U);
  EXPECT_EQ(jobs[0].runs, 2);
  EXPECT_EQ(jobs[0].requeues, 1);
  EXPECT_EQ(jobs[0].state, "done");
  EXPECT_EQ(jobs[0].exit_code, 0);
  EXPECT_EQ(jobs[0].nodes, 2);
  EXPECT_EQ(jobs[0].node_list, "gpu[1-2]");
  EXPECT_EQ(jobs[1].state, "failed");
  const std::string table = format_job_history(jobs);
  EXPECT_NE(table.find("SLURM jobs"), std::string::npos) << table;
  EXPECT_EQ(format_job_history({}), "");
}

SbatchOptions nasty_options(const std::filesystem::path& dir) {
  SbatchOptions o;
  o.kvsafe_binary = "/opt/kv safe/bin/kvsafe";
  o.grid_path = dir / "my grid's $(touch PWNED); \"x\".yaml";
  o.db_path = dir / "res ults/`touch PWNED`.db";
  o.job_dir = dir / "res ults/job $x";
  o.job_name = "kvsafe-it's \"quoted\"";
  o.partition = "debug";
  o.account = "lab;rm -rf /";
  o.nodes = 2;
  o.tasks_per_node = 4;
  o.gpus_per_node = 4;
  o.time = "48:00:00";
  o.extra_options = {"--qos=normal", "--comment=a b"};
  o.environment = {{"KVSAFE_DATA", "/data/with space"}, {"KVSAFE_MODEL_CACHE", "/m/$(touch PWNED)"}};
  o.submitted_from = "kvsafe submit 'my grid'";
  return o;
}

TEST(SbatchScript, BashParsesItAndEveryValueIsQuoted) {
  testing::TempDir dir("sbatch_script");
  const std::string script = sbatch_script(nasty_options(dir.path()));
  const auto path = dir.path() / "job.sbatch";
  std::ofstream(path) << script;
  const ProcessResult syntax = run_process({"bash", "-n", path.string()});
  EXPECT_EQ(syntax.exit_code, 0) << syntax.output << script;
  EXPECT_NE(script.find("#SBATCH --job-name=\"kvsafe-it's \\\"quoted\\\"\"\n"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=4\n#SBATCH --gpus-per-task=1\n"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("#SBATCH --signal=B:USR1@120\n#SBATCH --requeue\n"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --account=\"lab;rm -rf /\"\n"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH \"--comment=a b\"\n"), std::string::npos) << script;
  EXPECT_NE(script.find("export KVSAFE_MODEL_CACHE='/m/$(touch PWNED)'\n"), std::string::npos) << script;
  EXPECT_NE(script.find("srun --mpi=pmix --kill-on-bad-exit=1 '/opt/kv safe/bin/kvsafe' run '" + dir.path().string() +
                        "/my grid'\\''s $(touch PWNED); \"x\".yaml' --db "),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("requeue_limit=3\ndrained=75\n"), std::string::npos) << script;
  // Only USR1 is forwarded: SLURM sends TERM to the ranks itself, and a second one stops a run at once.
  EXPECT_NE(script.find("kill -USR1 \"$srun_pid\""), std::string::npos) << script;
  EXPECT_EQ(script.find("kill -TERM"), std::string::npos) << script;
  EXPECT_EQ(script.find("kill -\"$1\""), std::string::npos) << script;
  // The body's words, as bash reads them, are the paths themselves: print the srun line's words.
  const std::string line = script.substr(script.find("srun --mpi"), script.find(" &\n") - script.find("srun --mpi"));
  const ProcessResult words = run_process({"bash", "-c", "printf '%s\\n' " + line});
  EXPECT_NE(words.output.find("\n" + (dir.path() / "my grid's $(touch PWNED); \"x\".yaml").string() + "\n"),
            std::string::npos)
      << words.output;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "PWNED"));
  EXPECT_FALSE(std::filesystem::exists("PWNED"));
}

TEST(SbatchScript, CpuJobsAndBadValues) {
  testing::TempDir dir("sbatch_cpu");
  SbatchOptions o = nasty_options(dir.path());
  o.gpus_per_node = 0;
  o.cpus_per_task = 2;
  o.job_dir = "/r/100%/x.slurm";  // sbatch would expand %/ otherwise
  const std::string script = sbatch_script(o);
  EXPECT_NE(script.find("#SBATCH --output=/r/100%%/x.slurm/slurm-%j.out\n"), std::string::npos) << script;
  EXPECT_EQ(script.find("--gpus-per-task"), std::string::npos);
  EXPECT_NE(script.find("#SBATCH --cpus-per-task=2\n"), std::string::npos);
  o.environment = {{"NOT A NAME", "x"}};
  EXPECT_THROW(sbatch_script(o), InputError);
  o = nasty_options(dir.path());
  o.job_name = "two\nlines";
  EXPECT_THROW(sbatch_script(o), InputError);
  o = nasty_options(dir.path());
  o.nodes = 0;
  EXPECT_THROW(sbatch_script(o), InputError);
}

}  // namespace
}  // namespace kvsafe::cluster
