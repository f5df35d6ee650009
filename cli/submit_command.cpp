// `kvsafe submit GRID`: writes the sbatch script next to the database
// (results/<grid>.slurm/job.sbatch, cluster/sbatch_script.h) from the grid's `slurm:` section
// and the flags, and submits it with `sbatch --parsable`; --dry-run prints it instead.

#include <fmt/format.h>
// NOTE: GCC 12 sees a "potential null pointer dereference" in std::string's move inside
// CLI11's string splitting, inlined for this file's vector positional (a false positive).
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/grid_argument.h"
#include "cluster/sbatch_script.h"
#include "cluster/slurm_time.h"
#include "common/error.h"
#include "common/exit_codes.h"
#include "common/logging.h"
#include "common/subprocess.h"
#include "orchestrator/grid_parser.h"

namespace kvsafe::cli {
namespace {

struct SubmitFlags {
  std::string grid;
  std::string db;
  bool dry_run = false;
  std::int64_t nodes = 0;           // 0: slurm.nodes
  std::int64_t tasks_per_node = 0;  // 0: slurm.gpus_per_node, or 2 on CPU-only clusters
  std::int64_t cpus_per_task = 0;   // 0: SLURM's default
  std::int64_t gpus_per_node = -1;  // -1: slurm.gpus_per_node; 0: a CPU-only cluster
  std::string time;
  std::string partition;
  std::int64_t requeue = 3;
  std::vector<std::string> sbatch_extra;
};

std::filesystem::path this_binary() {
  std::error_code error;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path("kvsafe") : path;
}

int run_submit(const SubmitFlags& flags, const CommandContext& context) {
  const std::optional<orchestrator::GridSpec> read =
      read_grid_argument(flags.grid, context, "submit", "nothing submitted");
  if (!read) return kExitFailure;
  const orchestrator::GridSpec& grid = *read;
  const orchestrator::SlurmSpec slurm = grid.slurm.value_or(orchestrator::SlurmSpec{});
  if (!grid.slurm) {
    fmt::print(stderr, "kvsafe submit: {} has no `slurm:` section; using its defaults and the flags\n", flags.grid);
  }

  cluster::SbatchOptions o;
  o.kvsafe_binary = this_binary();
  o.grid_path = std::filesystem::absolute(flags.grid).lexically_normal();
  o.db_path = std::filesystem::absolute(flags.db.empty() ? grid.default_db_path() : std::filesystem::path(flags.db))
                  .lexically_normal();
  o.job_dir = o.db_path.parent_path() / (o.db_path.stem().string() + ".slurm");
  o.job_name = "kvsafe-" + grid.name;
  o.partition = flags.partition.empty() ? slurm.partition : flags.partition;
  o.account = slurm.account;
  o.nodes = flags.nodes > 0 ? flags.nodes : slurm.nodes;
  o.gpus_per_node = flags.gpus_per_node >= 0 ? flags.gpus_per_node : slurm.gpus_per_node;
  // GPU clusters: one rank per GPU. CPU-only (gpus_per_node 0): the scheduler and one worker
  // per node unless told otherwise.
  o.tasks_per_node = flags.tasks_per_node > 0 ? flags.tasks_per_node : (o.gpus_per_node > 0 ? o.gpus_per_node : 2);
  o.cpus_per_task = flags.cpus_per_task;
  o.time = flags.time.empty() ? slurm.time : flags.time;
  if (!cluster::slurm_time_seconds(o.time)) {
    fmt::print(stderr, "kvsafe submit: --time `{}` is not a SLURM time (e.g. 24:00:00, 2-00:00:00, 90)\n", o.time);
    return kExitUsage;
  }
  o.signal_lead_s = cluster::drain_signal_lead_s(o.time, grid.execution.grace_period_s);
  o.requeue_limit = flags.requeue;
  o.extra_options = slurm.extra;
  o.extra_options.insert(o.extra_options.end(), flags.sbatch_extra.begin(), flags.sbatch_extra.end());
  o.environment = {{"KVSAFE_DATA", std::filesystem::absolute(context.environment.data_dir).string()},
                   {"KVSAFE_MODEL_CACHE", std::filesystem::absolute(context.environment.model_cache_dir).string()}};
  o.submitted_from = context.command_line;
  const std::string script = cluster::sbatch_script(o);
  if (flags.dry_run) {
    fmt::print("{}", script);
    return kExitOk;
  }

  std::filesystem::create_directories(o.job_dir);
  const auto script_path = o.job_dir / "job.sbatch";
  {
    std::ofstream out(script_path);
    out << script;
    KVSAFE_CHECK(out.good(), script_path.string(), ": cannot write the sbatch script");
  }
  const ProcessResult submitted =
      run_process({"sbatch", "--parsable", script_path.string()}, {.timeout_s = 120, .merge_stderr = false});
  if (submitted.exit_code != 0) {
    fmt::print(stderr, "kvsafe submit: sbatch failed (exit {}): {}{}\n", submitted.exit_code, submitted.error,
               submitted.output);
    fmt::print(stderr, "kvsafe submit: the script is {}\n", script_path.string());
    return kExitFailure;
  }
  // "id" or "id;cluster" (federations), then a newline.
  const std::string& printed = submitted.output;
  const std::string job_id = printed.substr(0, printed.find_first_of(";\r\n"));
  fmt::print(stderr, "kvsafe submit: job {} -> {} ({} node(s) x {} task(s), time {}, requeue up to {}x); log {}\n",
             job_id, o.db_path.string(), o.nodes, o.tasks_per_node, o.time, o.requeue_limit,
             (o.job_dir / ("slurm-" + job_id + ".out")).string());
  fmt::print("{}\n", job_id);
  return kExitOk;
}

}  // namespace

void register_submit(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<SubmitFlags>();
  auto* command = app.add_subcommand(
      "submit",
      "Submit a grid to SLURM: writes <db>.slurm/job.sbatch from the grid's `slurm:` section and the flags\n"
      "(srun --mpi=pmix kvsafe run over nodes x tasks; drain before the time limit, then requeue) and\n"
      "submits it with sbatch; prints the job id. --dry-run prints the script and submits nothing.\n"
      "Options after `--` are added to the script as #SBATCH lines.");
  command->add_option("grid", flags->grid, "Grid file (YAML)")->required();
  command->add_option("--db", flags->db, "Results database (default results/<grid name>.db)");
  command->add_flag("--dry-run", flags->dry_run, "Print the sbatch script instead of submitting it");
  command->add_option("--nodes", flags->nodes, "Nodes (default: slurm.nodes)")->check(CLI::Range(1, 100000));
  command
      ->add_option("--tasks-per-node", flags->tasks_per_node,
                   "Ranks per node (default: slurm.gpus_per_node, or 2 on CPU-only clusters)")
      ->check(CLI::Range(1, 4096));
  command
      ->add_option("--gpus-per-node", flags->gpus_per_node,
                   "GPUs per node, 0 for CPU-only (default: slurm.gpus_per_node)")
      ->check(CLI::Range(0, 64));
  command->add_option("--cpus-per-task", flags->cpus_per_task, "Cores per rank (default: SLURM's)")
      ->check(CLI::Range(1, 4096));
  command->add_option("--time", flags->time, "Time limit, a SLURM time (default: slurm.time)");
  command->add_option("--partition", flags->partition, "Partition (default: slurm.partition)");
  command->add_option("--requeue", flags->requeue, "Requeues after a drain before giving up (default 3)")
      ->check(CLI::Range(0, 1000));
  command->add_option("sbatch_extra", flags->sbatch_extra, "More sbatch options, after --");
  command->callback([flags, &context] {
    try {
      context.exit_code = run_submit(*flags, context);
    } catch (const Error& error) {
      fmt::print(stderr, "kvsafe submit: {}\n", error.what());
      context.exit_code = kExitFailure;
    }
  });
}

}  // namespace kvsafe::cli
