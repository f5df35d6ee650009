#pragma once
// The results schema: forward-only migrations, one per schema version, applied in order.
// The version lives in `PRAGMA user_version` (0 = an empty file). A migration is a list of
// SQL steps run in one transaction together with its user_version bump, so a crash
// mid-migration leaves the previous version intact.
//
// Adding a table or column: append a Migration with the next version; never edit one that
// has shipped (databases in the wild already ran it).

#include <string_view>
#include <vector>

namespace kvsafe::db {

class Connection;

struct Migration {
  int version = 0;                        // user_version after this migration
  std::string_view description{};         // one line, logged when applied
  std::vector<std::string_view> steps{};  // SQL statements, run in order
};

// All migrations, ordered by version 1, 2, ...
const std::vector<Migration>& schema_migrations();

// The newest schema version this build knows.
int latest_schema_version();

// PRAGMA user_version of the open database. Throws DbError ("... is not a SQLite
// database") when the file is not SQLite.
int schema_version(Connection& connection);

// Throws DbError when the database is newer than this build:
// "<path> has schema version N, this kvsafe knows up to M; upgrade kvsafe".
void check_schema_not_newer(Connection& connection);

// Applies every migration after the current version up to target_version (default: the
// latest), one transaction per migration. Returns the version reached. Throws DbError for
// a newer database or a failed step (that migration rolled back, earlier ones kept).
int migrate(Connection& connection, int target_version = -1);

}  // namespace kvsafe::db
