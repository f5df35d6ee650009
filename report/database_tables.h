#pragma once
// Every table of paper_tables() that a results database fills, in that order: the one entry
// point of `kvsafe tables` and `kvsafe report`, so both count the same verdicts the same way.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "report/table.h"
#include "report/verdict_sql.h"

namespace kvsafe::report {

struct DatabaseTableOptions {
  std::int64_t min_baseline_refusals = 10;  // below: a baseline's flips are undefined (issue 25)
  std::optional<std::string> judge{};       // whose verdicts count (report/verdict_sql.h)
};

// The filled tables, in paper_tables() order; a table with no row is left out.
std::vector<Table> database_tables(const std::filesystem::path& db, const DatabaseTableOptions& options = {});

// Which judge's verdicts a report over `db` counts, given what the user asked (`--judge`, ""
// for none). Throws InputError when the named judge has no verdict there, or when none is named
// and the runs' own verdicts come from more than one judge: a table over both would compare
// judges, not quantizers. The message lists the judges stored with their counts.
std::optional<std::string> choose_judge(const std::filesystem::path& db, const std::string& requested);

}  // namespace kvsafe::report
