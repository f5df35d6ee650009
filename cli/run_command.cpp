// `kvsafe run GRID`: executes a grid, in one process or under mpirun/srun. The runner
// itself is runner/run_grid.h; this file reads the flags, prints the dry run, and maps the
// outcome to an exit code (cli/exit_codes.h). docs/run.md describes it all.

#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/grid_argument.h"
#include "common/logging.h"
#include "db/store.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"
#include "orchestrator/shards.h"
#include "runner/run_grid.h"

namespace kvsafe::cli {
namespace {

struct RunFlags {
  std::string grid;
  std::string db;
  bool resume = false;
  bool fresh = false;
  bool dry_run = false;
  bool retry_failed = false;
};

// Shards still to run per cell: from the database when it exists (pending, plus running
// ones a crashed run left: they are redone), else every shard of every cell.
int print_dry_run(const RunFlags& flags, const CommandContext& context) {
  const std::optional<orchestrator::GridSpec> read =
      read_grid_argument(flags.grid, context, "run", "nothing would run");
  if (!read) return kExitFailure;
  const orchestrator::GridSpec& grid = *read;
  const auto cells = orchestrator::expand_grid(grid);
  const std::filesystem::path db = flags.db.empty() ? grid.default_db_path() : std::filesystem::path(flags.db);
  const bool use_db = !flags.fresh && std::filesystem::exists(db);
  std::map<std::string, std::vector<db::ShardKey>> todo;
  if (use_db) {
    auto store = db::Store::open(db, {.read_only = true});
    std::vector<db::ShardStatus> runnable{db::ShardStatus::kPending, db::ShardStatus::kRunning};
    if (flags.retry_failed) runnable.push_back(db::ShardStatus::kFailed);
    for (const auto status : runnable) {
      for (auto& shard : store->shards_with_status(status)) todo[shard.cell_id].push_back(shard);
    }
  }
  std::set<std::string> known;
  if (use_db) {
    auto store = db::Store::open(db, {.read_only = true});
    for (const auto& id : store->done_cell_ids()) known.insert(id);
    for (const auto status :
         {db::ShardStatus::kPending, db::ShardStatus::kRunning, db::ShardStatus::kDone, db::ShardStatus::kFailed}) {
      for (const auto& shard : store->shards_with_status(status)) known.insert(shard.cell_id);
    }
  }
  fmt::print("kvsafe run {} (dry run): database {}{}\n", flags.grid, db.string(),
             flags.fresh && std::filesystem::exists(db) ? " (would be moved aside: --fresh)"
             : use_db                                   ? ""
                                                        : " (new)");
  fmt::print("{:<16}  {:<24} {:<24} {:<12} {:<12} {:>7} {:>7}\n", "cell", "model", "kv", "task", "benchmark", "shards",
             "prompts");
  std::int64_t shards = 0;
  std::int64_t prompts = 0;
  for (const auto& cell : cells) {
    std::vector<db::ShardKey> left;
    if (use_db && known.count(cell.id)) {
      left = todo[cell.id];
    } else {
      for (const auto& range : orchestrator::shard_ranges(cell.n_prompts, grid.execution.shard_size)) {
        left.push_back({.cell_id = cell.id, .begin = range.begin, .end = range.end});
      }
    }
    std::int64_t cell_prompts = 0;
    for (const auto& shard : left) cell_prompts += shard.end - shard.begin;
    if (left.empty()) continue;
    shards += static_cast<std::int64_t>(left.size());
    prompts += cell_prompts;
    fmt::print("{:<16}  {:<24} {:<24} {:<12} {:<12} {:>7} {:>7}\n", cell.short_id(), cell.model.name, cell.kv_label,
               orchestrator::to_string(cell.task()), cell.benchmark.name, left.size(), cell_prompts);
  }
  fmt::print("would run {} shard(s), {} prompt(s) of {} cell(s); shard size {}, {} retries\n", shards, prompts,
             cells.size(), grid.execution.shard_size, grid.execution.retries);
  return kExitOk;
}

int run_run(const RunFlags& flags, CommandContext& context, int* argc, char*** argv) {
  if (flags.resume && flags.fresh) {
    fmt::print(stderr, "kvsafe run: --resume and --fresh exclude each other\n");
    return kExitUsage;
  }
  if (flags.dry_run) return print_dry_run(flags, context);
  const runner::RunGridResult result = runner::run_grid({.grid_path = flags.grid,
                                                         .db_path = flags.db,
                                                         .fresh = flags.fresh,
                                                         .retry_failed = flags.retry_failed,
                                                         .command_line = context.command_line,
                                                         .environment = context.environment,
                                                         .live_progress = ::isatty(STDERR_FILENO) == 1,
                                                         .argc = argc,
                                                         .argv = argv});
  return result.exit_code;
}

}  // namespace

void register_run(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<RunFlags>();
  auto* command =
      app.add_subcommand("run",
                         "Run a grid: every cell's prompts through the model with its KV quantizer, judged, stored in\n"
                         "SQLite. One process, or `mpirun -np N kvsafe run GRID` (rank 0 schedules, the rest work).\n"
                         "Finished shards are never redone; re-running resumes. Exit codes: 0 all done, 1 a cell\n"
                         "failed or an error, 75 stopped by a signal (requeue and run again to resume).");
  command->add_option("grid", flags->grid, "Grid file (YAML), e.g. experiments/quickstart.yaml")->required();
  command->add_option("--db", flags->db, "Results database (default results/<grid name>.db)");
  command->add_flag("--resume", flags->resume, "Continue an earlier run on the same database (the default)");
  command->add_flag("--fresh", flags->fresh,
                    "Start over: an existing database is moved aside to <db>.replaced-<time>, never deleted");
  command->add_flag("--dry-run", flags->dry_run, "Validate and print what would run, without running it");
  command->add_flag("--retry-failed", flags->retry_failed,
                    "Run failed shards again (attempts start over; their cells leave the failed state)");
  command->callback([flags, &context] { context.exit_code = run_run(*flags, context, nullptr, nullptr); });
}

}  // namespace kvsafe::cli
