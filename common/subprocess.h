#pragma once
// Runs a program and waits for it: `kvsafe report` renders PNG figures with rsvg-convert.
// No shell in between, so arguments are never re-parsed: a path with spaces, quotes or `$`
// reaches the program as is.

#include <string>
#include <vector>

namespace kvsafe {

struct ProcessResult {
  int exit_code = 0;     // the program's exit status; 128 + N when killed by signal N; 127: not started
  std::string output{};  // its stdout and stderr together (or why it could not start)
};

// Runs argv[0] (looked up on PATH when it has no '/') with argv and waits. Never throws for the
// program's failure; throws InputError on an empty argv.
ProcessResult run_process(const std::vector<std::string>& argv);

// The full path of `program` on PATH, or "" when it is not there.
std::string find_on_path(const std::string& program);

}  // namespace kvsafe
