#pragma once
// Runs a program and waits for it: `kvsafe report` renders PNG figures with rsvg-convert, and
// tests drive pdflatex and a headless browser. No shell in between, so arguments are never
// re-parsed: a path with spaces, quotes or `$` reaches the program as is.

#include <string>
#include <vector>

namespace kvsafe {

struct ProcessOptions {
  // Kill the program (and every process it started: it runs in its own process group) after
  // this many seconds; 0 = wait for ever. A browser's helpers may hold its output open after it
  // exits: the timeout bounds that wait too.
  double timeout_s = 0;
  bool merge_stderr = true;  // false: stderr apart, in ProcessResult::error
};

struct ProcessResult {
  // The program's exit status; 128 + N when killed by signal N; 127 when it could not start;
  // 124 when the timeout killed it (as coreutils' timeout says).
  int exit_code = 0;
  std::string output{};  // its stdout (and stderr, merged), or why it could not start
  std::string error{};   // its stderr when not merged
};

// Runs argv[0] (looked up on PATH when it has no '/') with argv and waits. Never throws for the
// program's failure; throws InputError on an empty argv.
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// The full path of `program` on PATH, or "" when it is not there.
std::string find_on_path(const std::string& program);

}  // namespace kvsafe
