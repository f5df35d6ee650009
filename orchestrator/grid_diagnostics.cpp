#include "orchestrator/grid_diagnostics.h"

#include <algorithm>
#include <tuple>

namespace kvsafe::orchestrator {

std::string Diagnostic::format() const {
  std::string out = file;
  out += ':' + std::to_string(line) + ':' + std::to_string(column) + ": ";
  if (severity == Severity::kWarning) out += "warning: ";
  if (!key_path.empty()) out += key_path + ": ";
  out += message;
  return out;
}

void Diagnostics::add(Diagnostic diagnostic) {
  // NOTE: sweeps validate every combination; the same problem found twice at the same
  // place is reported once.
  for (const Diagnostic& seen : items_) {
    if (seen.severity == diagnostic.severity && seen.line == diagnostic.line && seen.column == diagnostic.column &&
        seen.key_path == diagnostic.key_path && seen.message == diagnostic.message) {
      return;
    }
  }
  if (diagnostic.severity == Severity::kError) ++error_count_;
  items_.push_back(std::move(diagnostic));
}

void Diagnostics::add_error(std::string file, int line, int column, std::string key_path, std::string message) {
  add({Severity::kError, std::move(file), line, column, std::move(key_path), std::move(message)});
}

void Diagnostics::add_warning(std::string file, int line, int column, std::string key_path, std::string message) {
  add({Severity::kWarning, std::move(file), line, column, std::move(key_path), std::move(message)});
}

std::vector<Diagnostic> Diagnostics::errors() const {
  std::vector<Diagnostic> out;
  for (const Diagnostic& d : items_) {
    if (d.severity == Severity::kError) out.push_back(d);
  }
  return out;
}

std::vector<Diagnostic> Diagnostics::warnings() const {
  std::vector<Diagnostic> out;
  for (const Diagnostic& d : items_) {
    if (d.severity == Severity::kWarning) out.push_back(d);
  }
  return out;
}

std::string Diagnostics::format() const {
  std::vector<const Diagnostic*> sorted;
  sorted.reserve(items_.size());
  for (const Diagnostic& d : items_) sorted.push_back(&d);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic* a, const Diagnostic* b) {
    return std::tuple(a->line, a->column, a->severity) < std::tuple(b->line, b->column, b->severity);
  });
  std::string out;
  for (const Diagnostic* d : sorted) out += d->format() + '\n';
  return out;
}

}  // namespace kvsafe::orchestrator
