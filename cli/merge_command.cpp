// `kvsafe merge`: combine databases written by separate SLURM jobs (a later issue).

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace kvsafe::cli {

void register_merge(CLI::App& app, CommandContext& context) {
  auto* command =
      app.add_subcommand("merge",
                         "Merge results databases written by separate jobs (SQLite on a shared file system must\n"
                         "not be written by many hosts at once) into one; identical cells are deduplicated.");
  auto inputs = std::make_shared<std::vector<std::string>>();
  command->add_option("output", "Database to merge into")->required();
  command->add_option("inputs", *inputs, "Databases to merge")->required();
  command->callback(
      [inputs, &context] { context.exit_code = report_not_built_yet("merge", "the scale-out issue (kvsafe merge)"); });
}

}  // namespace kvsafe::cli
