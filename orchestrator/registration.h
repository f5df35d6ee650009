#pragma once
// Registration: a parsed grid's experiment, models and cells written to the results
// database. Idempotent: registering the same grid again changes nothing; an edited grid
// adds only its new cells (cell ids are content hashes, cell_identity.h).

#include <cstdint>
#include <string>
#include <vector>

#include "db/records.h"
#include "orchestrator/cell.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::db {
class Store;
}

namespace kvsafe::orchestrator {

// The database's view of a cell (kv_hash = SHA-256 of the kv spec's canonical JSON).
db::CellRecord to_cell_record(const Cell& cell);

struct GridSource {
  std::string path;  // the grid file as given on the command line
  std::string text;  // its full text, stored for provenance
};

struct RegistrationSummary {
  std::int64_t experiment_id = 0;
  db::RegisterResult cells{};
};

// One transaction per call of the store's registration methods; throws DbError.
RegistrationSummary register_grid(db::Store& store, const GridSpec& grid, const std::vector<Cell>& cells,
                                  const GridSource& source);

}  // namespace kvsafe::orchestrator
