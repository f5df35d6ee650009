#include "cli/grid_argument.h"

#include <fmt/format.h>

#include "common/logging.h"
#include "orchestrator/grid_parser.h"

namespace kvsafe::cli {

std::optional<orchestrator::GridSpec> read_grid_argument(const std::string& grid, const CommandContext& context,
                                                         std::string_view command, std::string_view nothing_done) {
  auto parsed = orchestrator::parse_grid_file(grid, context.environment, {});
  if (!parsed.diagnostics.empty()) print_to_stderr_lines(parsed.diagnostics.format());
  if (!parsed.ok()) {
    fmt::print(stderr, "kvsafe {}: {} has {} error(s); {}\n", command, grid, parsed.diagnostics.error_count(),
               nothing_done);
    return std::nullopt;
  }
  return std::move(*parsed.grid);
}

}  // namespace kvsafe::cli
