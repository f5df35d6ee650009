#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/exit_codes.h"

namespace kvsafe::cli {

int report_not_built_yet(const std::string& command, const std::string& arrives_with) {
  fmt::print(stderr, "kvsafe {}: not built yet; it arrives with {}. Nothing was done.\n", command, arrives_with);
  return kExitNotBuiltYet;
}

}  // namespace kvsafe::cli
