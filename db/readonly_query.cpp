#include "db/readonly_query.h"

#include <fmt/format.h>

#include <array>
#include <memory>
#include <string_view>

#include "common/error.h"
#include "db/connection.h"
#include "db/db_error.h"
#include "db/schema.h"
#include "db/sqlite_check.h"

namespace kvsafe::db {
namespace {

constexpr std::string_view kReadOnlyRefusal = "kvsafe query is read-only: the statement would modify the database";

// PRAGMAs that take an argument yet only read. Any other PRAGMA with an argument
// (PRAGMA user_version = 5, PRAGMA query_only = OFF, PRAGMA journal_mode = DELETE) is refused.
constexpr std::array<std::string_view, 9> kReadingPragmasWithArgument = {
    "table_info",       "table_xinfo",       "index_list",      "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check"};

struct AuthorizerState {
  std::string refused_action;  // set by the authorizer when it denies something
};

// sqlite3_set_authorizer callback: runs while a statement is compiled.
int authorize(void* user_data, int action, const char* arg1, const char* arg2, const char* /*db_name*/,
              const char* /*trigger*/) {
  auto* state = static_cast<AuthorizerState*>(user_data);
  switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      state->refused_action = action == SQLITE_ATTACH ? "ATTACH" : "DETACH";
      return SQLITE_DENY;
    case SQLITE_PRAGMA: {
      if (arg2 == nullptr) return SQLITE_OK;  // PRAGMA name: a read
      const std::string_view name = arg1 != nullptr ? arg1 : "";
      for (std::string_view reading : kReadingPragmasWithArgument) {
        if (name == reading) return SQLITE_OK;
      }
      state->refused_action = fmt::format("PRAGMA {} = {}", name, arg2);
      return SQLITE_DENY;
    }
    default:
      return SQLITE_OK;  // writes are caught by sqlite3_stmt_readonly below
  }
}

struct StatementDeleter {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

std::string blob_text(const void* data, int size) {
  if (size > 64) return fmt::format("<blob {} bytes>", size);
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::string text = "x'";
  for (int i = 0; i < size; ++i) text += fmt::format("{:02x}", bytes[i]);
  return text + "'";
}

QueryValue column_value(sqlite3_stmt* statement, int column) {
  switch (sqlite3_column_type(statement, column)) {
    case SQLITE_NULL:
      return std::monostate{};
    case SQLITE_INTEGER:
      return static_cast<std::int64_t>(sqlite3_column_int64(statement, column));
    case SQLITE_FLOAT:
      return sqlite3_column_double(statement, column);
    case SQLITE_BLOB:
      return blob_text(sqlite3_column_blob(statement, column), sqlite3_column_bytes(statement, column));
    default: {
      const unsigned char* text = sqlite3_column_text(statement, column);
      return std::string(reinterpret_cast<const char*>(text),
                         static_cast<std::size_t>(sqlite3_column_bytes(statement, column)));
    }
  }
}

}  // namespace

std::string query_value_to_string(const QueryValue& value) {
  if (std::holds_alternative<std::monostate>(value)) return "";
  if (const auto* i = std::get_if<std::int64_t>(&value)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&value)) return fmt::format("{}", *d);
  return std::get<std::string>(value);
}

QueryResult run_readonly_query(const std::filesystem::path& db, const std::string& sql) {
  Connection connection(db, ConnectionOptions{.read_only = true, .create = false});
  sqlite3* handle = connection.handle();
  const std::string& path = connection.path();
  check_schema_not_newer(connection);  // also the first read: a non-SQLite file fails here
  connection.exec("PRAGMA query_only = ON");
  AuthorizerState state;
  KVSAFE_SQLITE_CHECK(handle, path, "", sqlite3_set_authorizer(handle, authorize, &state));

  // Compile every statement first; nothing runs unless all of them only read.
  std::vector<StatementPtr> statements;
  const char* cursor = sql.c_str();
  const char* const end = sql.c_str() + sql.size();
  while (cursor < end) {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    try {
      KVSAFE_SQLITE_CHECK(handle, path, sql,
                          sqlite3_prepare_v2(handle, cursor, static_cast<int>(end - cursor), &raw, &tail));
    } catch (const DbError&) {
      if (state.refused_action.empty()) throw;
      throw DbError(fmt::format("{} ({} is not allowed) [{}]", kReadOnlyRefusal, state.refused_action, path));
    }
    StatementPtr statement(raw);
    const std::string text = std::string(cursor, tail);
    cursor = tail;
    if (statement == nullptr) continue;  // whitespace or a comment
    // NOTE: BEGIN/COMMIT/SAVEPOINT report read-only and are harmless on a read-only file.
    if (sqlite3_stmt_readonly(statement.get()) == 0) {
      throw DbError(fmt::format("{}: {} [{}]", kReadOnlyRefusal, text, path));
    }
    statements.push_back(std::move(statement));
  }
  if (statements.empty()) throw DbError(fmt::format("{}: kvsafe query was given no SQL statement", path));

  QueryResult result;
  for (const StatementPtr& statement : statements) {
    sqlite3_stmt* s = statement.get();
    const int n_columns = sqlite3_column_count(s);
    QueryResult current;
    for (int c = 0; c < n_columns; ++c) current.columns.emplace_back(sqlite3_column_name(s, c));
    const std::string text = sqlite3_sql(s);
    while (KVSAFE_SQLITE_CHECK(handle, path, text, sqlite3_step(s)) == SQLITE_ROW) {
      std::vector<QueryValue> row;
      row.reserve(static_cast<std::size_t>(n_columns));
      for (int c = 0; c < n_columns; ++c) row.push_back(column_value(s, c));
      current.rows.push_back(std::move(row));
    }
    if (n_columns > 0) result = std::move(current);
  }
  return result;
}

}  // namespace kvsafe::db

namespace kvsafe::db {

std::string query_text(const QueryValue& value) {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  return query_value_to_string(value);
}

std::int64_t query_int64(const QueryValue& value) {
  if (const auto* i = std::get_if<std::int64_t>(&value)) return *i;
  if (const auto* d = std::get_if<double>(&value)) return static_cast<std::int64_t>(*d);
  return 0;
}

std::optional<double> query_double(const QueryValue& value) {
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&value)) return static_cast<double>(*i);
  return std::nullopt;
}

bool query_is_null(const QueryValue& value) {
  return std::holds_alternative<std::monostate>(value);
}

}  // namespace kvsafe::db
