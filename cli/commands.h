#pragma once
// One function per subcommand (one file each, STYLE.md: the CLI is thin; logic lives in
// the libraries). Each registers its CLI11 subcommand with a callback that stores its exit
// code in the context.

#include <string>

#include "common/environment.h"

namespace CLI {
class App;
}

namespace kvsafe::cli {

struct CommandContext {
  Environment environment;   // read once at start-up
  std::string command_line;  // the whole argv, for provenance
  int exit_code = 0;         // set by the subcommand that ran
};

void register_run(CLI::App& app, CommandContext& context);
void register_submit(CLI::App& app, CommandContext& context);
void register_status(CLI::App& app, CommandContext& context);
void register_query(CLI::App& app, CommandContext& context);
void register_tables(CLI::App& app, CommandContext& context);
void register_report(CLI::App& app, CommandContext& context);
void register_diagnose(CLI::App& app, CommandContext& context);
void register_generate(CLI::App& app, CommandContext& context);
void register_plan(CLI::App& app, CommandContext& context);
void register_quantize(CLI::App& app, CommandContext& context);
void register_datasets(CLI::App& app, CommandContext& context);
void register_merge(CLI::App& app, CommandContext& context);
void register_tokenize(CLI::App& app, CommandContext& context);
void register_judge(CLI::App& app, CommandContext& context);

// Multi-line text for `kvsafe --version`.
std::string version_text();

}  // namespace kvsafe::cli
