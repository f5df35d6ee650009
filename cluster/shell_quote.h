#pragma once
// Quoting for the two languages an sbatch script is written in: the POSIX shell of its body
// and sbatch's own `#SBATCH` directive lines. Every user-supplied string (grid and database
// paths, job names, extra options) passes through one of these, so a path with spaces,
// quotes, `$`, `;` or `$(...)` reaches the program as the same bytes and is never executed.

#include <string>
#include <string_view>

namespace kvsafe::cluster {

// One shell word: as is when it holds only characters no shell treats specially
// ([A-Za-z0-9_./:=@%+,-], not empty), else in single quotes with each ' written '\''.
std::string shell_quote(std::string_view word);

// One `#SBATCH --option=VALUE` value: sbatch splits directive lines at unquoted blanks and
// understands double quotes and backslash escapes (no expansion), so the value goes in double
// quotes with `"` and `\` escaped when it holds anything but safe characters. Throws
// InputError for a newline, which ends a directive line.
std::string sbatch_quote(std::string_view value);

}  // namespace kvsafe::cluster
