#include "db/sqlite_check.h"

#include <string>

#include "common/error.h"
#include "db/db_error.h"

namespace kvsafe::db::detail {

void throw_sqlite_error(int rc, sqlite3* handle, const std::string& db_path, std::string_view context,
                        const char* expression, const char* file, int line) {
  // NOTE: sqlite3_errmsg describes the most recent failure on the handle, which is the call
  // that just failed; the generic sqlite3_errstr(rc) is the fallback without a handle.
  const std::string sqlite_message = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
  std::string message;
  if ((rc & 0xff) == SQLITE_NOTADB) {
    message = kvsafe::detail::concat(db_path, " is not a SQLite database (", sqlite_message, ")");
  } else if ((rc & 0xff) == SQLITE_BUSY) {
    message = kvsafe::detail::concat(db_path, " is busy (", sqlite_message, ")");
  } else {
    message = kvsafe::detail::concat(db_path, ": ", sqlite_message);
  }
  if (!context.empty()) {
    message += kvsafe::detail::concat(" [in: ", context, "]");
  }
  message += kvsafe::detail::concat(" (", expression, " at ", file, ":", line, ")");
  throw DbError(message, rc);
}

}  // namespace kvsafe::db::detail
