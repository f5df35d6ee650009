#pragma once
// Logging set-up: everything logs through spdlog to stderr; stdout belongs to results.

#include <string>

namespace kvsafe {

enum class LogFormat { kText, kJson };

struct LoggingOptions {
  LogFormat format = LogFormat::kText;  // json: one object per line, for cluster log collectors
  bool verbose = false;                 // debug level instead of info
};

// Replaces spdlog's default logger with a stderr logger in the requested format.
void configure_logging(const LoggingOptions& options);

// The format configure_logging last set (text before it is called).
LogFormat current_log_format();

// Text meant for a person on stderr (a grid's diagnostics, "file:line:col: warning: ..."): as
// is in text mode; in json mode one log object per line (warn for lines with ": warning: ",
// error otherwise), so a log collector never sees a line that is not JSON.
void print_to_stderr_lines(const std::string& text);

// A status line kept at the bottom of the terminal (the run's live progress, on a TTY only):
// shown in place of the previous one; text log lines printed while it is shown appear above
// it instead of being glued to its end. Thread-safe. clear_live_line() erases it.
void show_live_line(const std::string& text);
void clear_live_line();

}  // namespace kvsafe
