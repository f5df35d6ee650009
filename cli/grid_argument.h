#pragma once
// The GRID argument of the commands that read a grid (run, plan, submit): parsed, every
// diagnostic printed to stderr, and on errors one closing line that says what did not happen.

#include <optional>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::cli {

// nullopt after printing "kvsafe <command>: GRID has N error(s); <nothing_done>".
std::optional<orchestrator::GridSpec> read_grid_argument(const std::string& grid, const CommandContext& context,
                                                         std::string_view command, std::string_view nothing_done);

}  // namespace kvsafe::cli
