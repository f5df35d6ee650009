// `kvsafe submit GRID`: writes and submits the sbatch script. SLURM support (cluster/)
// arrives with a later issue.

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace kvsafe::cli {

void register_submit(CLI::App& app, CommandContext& context) {
  auto* command =
      app.add_subcommand("submit",
                         "Submit a grid to SLURM: generates the sbatch script from the grid's `slurm:` section\n"
                         "(partition, nodes, gpus_per_node, time, account) and submits it; --dry-run prints it.");
  command->add_option("grid", "Grid file (YAML)")->required();
  command->add_flag("--dry-run")->description("Print the sbatch script instead of submitting it");
  command->callback(
      [&context] { context.exit_code = report_not_built_yet("submit", "the SLURM issue (cluster/), after issue 7"); });
}

}  // namespace kvsafe::cli
