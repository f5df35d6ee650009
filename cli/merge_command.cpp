// `kvsafe merge OUT IN... [--prefer newest|first]`: results databases written by separate jobs
// or clusters combined into one (db/merge.h); prints each conflict and what was copied.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "db/merge.h"

namespace kvsafe::cli {

void register_merge(CLI::App& app, CommandContext& context) {
  struct Flags {
    std::string out;
    std::vector<std::string> inputs;
    std::string prefer = "none";
    std::string scratch_dir;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = app.add_subcommand(
      "merge",
      "Merge results databases written by separate jobs or clusters (SQLite on a shared file system must\n"
      "not be written by many hosts at once) into OUT, created when missing. Cells, shards and answers\n"
      "are copied once; a shard done in two databases with different answers is a conflict: printed\n"
      "with both sides' runs, and OUT is left unchanged unless --prefer says which to keep. The inputs\n"
      "are only read; each one is merged in one transaction.");
  command->add_option("out", flags->out, "Database to merge into (created when missing)")->required();
  command->add_option("inputs", flags->inputs, "Databases to merge, in this order")->required();
  command
      ->add_option("--prefer", flags->prefer,
                   "Resolve conflicting shards: first keeps what OUT (or the earlier input) has, newest keeps the\n"
                   "shard whose run started later; none (default) changes nothing when there is a conflict")
      ->check(CLI::IsMember({"none", "first", "newest"}));
  command->add_option("--scratch-dir", flags->scratch_dir,
                      "Folder for the inputs' checked copies during the merge (default: OUT's folder)");
  command->callback([flags, &context] {
    std::vector<std::filesystem::path> inputs(flags->inputs.begin(), flags->inputs.end());
    const db::MergeResult result =
        db::merge_databases(flags->out, inputs,
                            {.prefer = db::parse_prefer(flags->prefer).value_or(db::Prefer::kNone),
                             .scratch_dir = flags->scratch_dir,
                             .holder_description = context.command_line});
    const std::string text = db::format_merge_result(result);
    std::fwrite(text.data(), 1, text.size(), stdout);
    context.exit_code = result.merged ? kExitOk : kExitFailure;
  });
}

}  // namespace kvsafe::cli
