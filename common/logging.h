#pragma once
// Logging set-up: everything logs through spdlog to stderr; stdout belongs to results.

namespace kvsafe {

enum class LogFormat { kText, kJson };

struct LoggingOptions {
  LogFormat format = LogFormat::kText;  // json: one object per line, for cluster log collectors
  bool verbose = false;                 // debug level instead of info
};

// Replaces spdlog's default logger with a stderr logger in the requested format.
void configure_logging(const LoggingOptions& options);

}  // namespace kvsafe
