// `kvsafe datasets list|verify|pull`: the benchmark registry (eval/, issue 6).

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace kvsafe::cli {

void register_datasets(CLI::App& app, CommandContext& context) {
  auto* command =
      app.add_subcommand("datasets",
                         "Benchmark prompt sets in $KVSAFE_DATA: list them, verify their checksums, or pull them\n"
                         "from their public sources (or --from an offline mirror) into the cache.");
  command->add_option("action", "list, verify or pull")->required()->check(CLI::IsMember({"list", "verify", "pull"}));
  command->add_option("--from", "pull: copy from this offline mirror folder instead of downloading");
  command->callback([&context] {
    context.exit_code = report_not_built_yet("datasets", "issue 6 (safety evaluation: the benchmark registry)");
  });
}

}  // namespace kvsafe::cli
