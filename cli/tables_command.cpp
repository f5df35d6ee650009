// `kvsafe tables DB`: the paper's tables from a results database (report/, a later issue).

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace kvsafe::cli {

void register_tables(CLI::App& app, CommandContext& context) {
  auto* command =
      app.add_subcommand("tables",
                         "Regenerate the paper's tables from a results database: phase transitions, benchmark\n"
                         "refusal and flip rates with CIs, PCR modes, mitigation recovery.");
  command->add_option("db", "Results database")->required();
  command->add_option("--format", "md, latex, csv or html");
  command->add_option("--out", "Folder for the table files");
  command->callback([&context] { context.exit_code = report_not_built_yet("tables", "the report issue (report/)"); });
}

}  // namespace kvsafe::cli
