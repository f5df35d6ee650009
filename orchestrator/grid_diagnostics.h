#pragma once
// Diagnostics for grid files: every problem the parser finds, with the file, the 1-based
// line and column, the key path (`kv_cache[2].bits`) and a message. The parser collects
// all of them (it never stops at the first), so a user fixes a grid in one pass.

#include <string>
#include <vector>

namespace kvsafe::orchestrator {

// A position in a grid file, 1-based; 0 means unknown.
struct SourceLocation {
  int line = 0;
  int column = 0;
};

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  std::string file{};      // display name of the grid (the path as given, or a label for text)
  int line = 0;            // 1-based; 0 when the position is unknown
  int column = 0;          // 1-based; 0 when the position is unknown
  std::string key_path{};  // e.g. "kv_cache[2].bits"; empty for the document itself
  std::string message{};   // what is wrong and, where possible, what would be right

  // "file:line:col: key_path: message"; warnings insert "warning: " before the key path.
  std::string format() const;
};

class Diagnostics {
 public:
  void add(Diagnostic diagnostic);
  void add_error(std::string file, int line, int column, std::string key_path, std::string message);
  void add_warning(std::string file, int line, int column, std::string key_path, std::string message);

  bool has_errors() const { return error_count_ > 0; }
  int error_count() const { return error_count_; }
  int warning_count() const { return static_cast<int>(items_.size()) - error_count_; }
  bool empty() const { return items_.empty(); }

  // In the order found (the parser walks the document top to bottom, mostly).
  const std::vector<Diagnostic>& all() const { return items_; }
  std::vector<Diagnostic> errors() const;
  std::vector<Diagnostic> warnings() const;

  // All diagnostics sorted by (line, column), errors before warnings on the same
  // position, one formatted line each, newline-terminated.
  std::string format() const;

 private:
  std::vector<Diagnostic> items_{};
  int error_count_ = 0;
};

}  // namespace kvsafe::orchestrator
