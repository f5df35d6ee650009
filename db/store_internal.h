#pragma once
// Helpers shared by the store_*.cpp files; not part of db/'s public interface.

#include <string>
#include <string_view>

#include "common/error.h"
#include "db/db_error.h"
#include "db/records.h"

// SQL expression for "now" as ISO-8601 UTC with milliseconds; every timestamp column uses it.
#define KVSAFE_SQL_NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

// Bad input to a Store method: throws DbError prefixed with the database path.
#define KVSAFE_DB_CHECK(path, cond, ...)                                                         \
  do {                                                                                           \
    if (!(cond)) [[unlikely]] {                                                                  \
      throw ::kvsafe::db::DbError(::kvsafe::detail::concat((path).string(), ": ", __VA_ARGS__)); \
    }                                                                                            \
  } while (false)

namespace kvsafe::db {

// A status column's value as ShardStatus; the schema's CHECK admits only the four, so any
// other text is a damaged database (InputError naming the text).
ShardStatus stored_shard_status(std::string_view text);

}  // namespace kvsafe::db
