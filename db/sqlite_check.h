#pragma once
// KVSAFE_SQLITE_CHECK: every sqlite3_* call db/ makes directly goes through it (STYLE.md:
// "every C API call goes through a checking macro"). On failure it throws DbError whose
// message names the database path, SQLite's own explanation, the expression and file:line.
// The macro is an expression: it yields the result code (SQLITE_OK, SQLITE_ROW or
// SQLITE_DONE), so `if (KVSAFE_SQLITE_CHECK(...) == SQLITE_ROW)` reads naturally.
//
// Not checked, on purpose: calls that return a value rather than a result code
// (sqlite3_column_*, sqlite3_changes64, sqlite3_errmsg) and clean-up in destructors
// (sqlite3_finalize, sqlite3_reset of a loaned statement, sqlite3_close_v2, ROLLBACK), which
// must not throw; a failed close or rollback is logged instead.
//
// This header includes <sqlite3.h>; the public headers of db/ do not.

#include <sqlite3.h>

#include <string>
#include <string_view>

namespace kvsafe::db::detail {

// Throws DbError for rc; handle may be null (then only the generic text of rc is used).
// context is extra text such as the SQL being run; may be empty.
[[noreturn]] void throw_sqlite_error(int rc, sqlite3* handle, const std::string& db_path, std::string_view context,
                                     const char* expression, const char* file, int line);

inline int check_sqlite(int rc, sqlite3* handle, const std::string& db_path, std::string_view context,
                        const char* expression, const char* file, int line) {
  if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) [[unlikely]] {
    throw_sqlite_error(rc, handle, db_path, context, expression, file, line);
  }
  return rc;
}

}  // namespace kvsafe::db::detail

// handle: the sqlite3* whose sqlite3_errmsg explains the failure (may be nullptr);
// path: the database path for the message; context: e.g. the SQL text ("" if none).
#define KVSAFE_SQLITE_CHECK(handle, path, context, expr) \
  ::kvsafe::db::detail::check_sqlite((expr), (handle), (path), (context), #expr, __FILE__, __LINE__)
