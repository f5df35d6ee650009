#pragma once
// Build provenance, recorded in the runs table and printed by `kvsafe --version`.

#include <string>

namespace kvsafe {

struct BuildInfo {
  std::string version;     // project version, e.g. "0.1.0"
  std::string git_commit;  // commit at configure time, "+dirty" when the tree had changes
  std::string compiler;    // compiler id and version
  std::string build_type;  // CMake build type
};

const BuildInfo& build_info();

}  // namespace kvsafe
