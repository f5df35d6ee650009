// `kvsafe run GRID`: executes a grid, in one process or under mpirun/srun.
// The runner (scheduler, workers, resume, signals) arrives with issue 7.

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace kvsafe::cli {

void register_run(CLI::App& app, CommandContext& context) {
  auto* command =
      app.add_subcommand("run",
                         "Run a grid: every cell's prompts through the model with its KV quantizer, judged, stored in\n"
                         "SQLite. One process, or `mpirun -np N kvsafe run GRID` (rank 0 schedules, the rest work).\n"
                         "Finished shards are never redone; re-running resumes.");
  command->add_option("grid", "Grid file (YAML), e.g. experiments/quickstart.yaml")->required();
  command->add_option("--db", "Results database (default results/<grid name>.db)");
  command->add_flag("--resume")->description("Continue an earlier run on the same database (the default)");
  command->add_flag("--fresh")->description("Start the grid's cells over in this database");
  command->add_flag("--dry-run")->description("Validate and print what would run, without running it");
  command->callback([&context] { context.exit_code = report_not_built_yet("run", "issue 7 (distributed runs)"); });
}

}  // namespace kvsafe::cli
