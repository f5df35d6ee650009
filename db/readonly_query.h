#pragma once
// run_readonly_query: the engine of `kvsafe query <db> "SELECT ..."`. It can never change
// the database: the file is opened SQLITE_OPEN_READONLY with PRAGMA query_only = ON, an
// authorizer refuses ATTACH/DETACH, writing PRAGMAs and every write action while the SQL is
// compiled, and each statement must pass sqlite3_stmt_readonly before anything runs.
//
// Several statements separated by ';' are accepted: all are compiled and checked first (if
// any would write, none runs), then run in order; the rows of the last statement that
// returns columns are returned.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kvsafe::db {

// One cell of a result: NULL, INTEGER, REAL, or TEXT. A BLOB becomes TEXT: "x'0a1b...'"
// for at most 64 bytes, "<blob N bytes>" beyond.
using QueryValue = std::variant<std::monostate, std::int64_t, double, std::string>;

struct QueryResult {
  std::vector<std::string> columns{};           // column names as SQLite reports them
  std::vector<std::vector<QueryValue>> rows{};  // each row has columns.size() values
};

// Throws DbError:
//  - the file does not exist (it is never created): "<path>: no such database file ...";
//  - the file is not SQLite, or its schema is newer than this build;
//  - a statement would write: "kvsafe query is read-only: the statement would modify the
//    database: <statement>";
//  - SQLite rejects the SQL (syntax, unknown table): SQLite's message and the SQL.
QueryResult run_readonly_query(const std::filesystem::path& db, const std::string& sql);

// Text of a value as `kvsafe query` prints it: "" for NULL, the shortest text that reads
// back the same double for REAL.
std::string query_value_to_string(const QueryValue& value);

// Typed reads of a value, for code that knows a column's type: TEXT as is (anything else as
// query_value_to_string); INTEGER or REAL as an integer (REAL truncated), 0 for NULL or TEXT;
// INTEGER or REAL as a double, nullopt for NULL or TEXT.
std::string query_text(const QueryValue& value);
std::int64_t query_int64(const QueryValue& value);
std::optional<double> query_double(const QueryValue& value);
bool query_is_null(const QueryValue& value);

}  // namespace kvsafe::db
