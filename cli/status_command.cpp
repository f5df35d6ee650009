// `kvsafe status DB`: experiments, cells by state, failures with their errors.

#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "db/store.h"

namespace kvsafe::cli {

void register_status(CLI::App& app, CommandContext& context) {
  auto db_path = std::make_shared<std::string>();
  auto* command =
      app.add_subcommand("status",
                         "Show a results database: each experiment's cells and shards by state (pending, running,\n"
                         "done, failed), prompts done, and every failed cell with its error. Read-only: safe while\n"
                         "a run writes.");
  command->add_option("db", *db_path, "Results database")->required();
  command->callback([db_path, &context] {
    auto store = db::Store::open(*db_path, {.read_only = true});
    const std::string text = db::format_status_report(store->status_report());
    std::fwrite(text.data(), 1, text.size(), stdout);
    context.exit_code = kExitOk;
  });
}

}  // namespace kvsafe::cli
