#pragma once
// Grid YAML -> GridSpec. Parsing never throws on a bad grid and never stops at the first
// problem: every error and warning of the file comes back in ParseResult::diagnostics,
// each with file:line:column and the key path (docs/grid.md, "Errors").

#include <filesystem>
#include <optional>
#include <string>

#include "common/environment.h"
#include "orchestrator/grid_diagnostics.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::orchestrator {

struct GridOptions {
  // `kvsafe run`: model paths (and chat template, markers and judge files) must exist;
  // `kvsafe plan` leaves it false so a grid with placeholder paths still plans.
  bool require_model_files = false;
  // parse_grid_text only: the folder relative paths resolve against (default: the
  // current directory). parse_grid_file uses the grid file's folder.
  std::filesystem::path base_dir{};
  // Warn about exclude rules that match no cell (walks the product without hashing).
  bool check_exclude_matches = true;
};

struct ParseResult {
  std::optional<GridSpec> grid{};  // set iff diagnostics has no errors
  Diagnostics diagnostics{};       // errors and warnings, possibly both empty

  bool ok() const { return grid.has_value(); }
};

// Reads and validates the grid file at `path`. A file that cannot be read is one
// diagnostic (line 0), not an exception. `env` resolves ${VAR} in paths.
ParseResult parse_grid_file(const std::filesystem::path& path, const Environment& env, const GridOptions& options = {});

// The same for YAML text; `display_name` names it in diagnostics (e.g. "<stdin>").
ParseResult parse_grid_text(std::string text, std::string display_name, const Environment& env,
                            const GridOptions& options = {});

}  // namespace kvsafe::orchestrator
