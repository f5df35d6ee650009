#pragma once
// A thin RAII layer over the SQLite C API: Connection (one sqlite3*), Statement (one
// prepared statement) and Transaction (BEGIN IMMEDIATE ... COMMIT, rolled back when
// destroyed uncommitted). Every failure throws DbError naming the database path.
//
// Not thread-safe: one Connection belongs to one thread (rank 0's scheduler thread).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace kvsafe::db {

class Connection;

// One prepared statement. Bind parameters are 1-based, columns 0-based, as in SQLite.
class Statement {
 public:
  Statement(Connection& connection, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, double value);
  // The text is copied (SQLITE_TRANSIENT), so a temporary is fine.
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind_null(int index);
  // The bytes are copied (SQLITE_TRANSIENT).
  Statement& bind_blob(int index, std::span<const std::byte> bytes);
  template <typename T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }

  // Runs one step: true when a row is available, false when the statement is done.
  bool step();
  // Steps until done; for statements that return no rows.
  void run();
  // Resets the statement and clears its bindings so it can be run again.
  void reset();

  bool column_is_null(int column) const;
  std::int64_t column_int64(int column) const;
  double column_double(int column) const;
  std::string column_text(int column) const;
  std::optional<std::int64_t> column_optional_int64(int column) const;
  std::optional<double> column_optional_double(int column) const;

  sqlite3_stmt* handle() const { return statement_; }
  const std::string& sql() const { return sql_; }

 private:
  Connection& connection_;
  sqlite3_stmt* statement_ = nullptr;
  std::string sql_;
};

// A cached statement on loan: reset (and its bindings cleared) when the loan ends, so it
// never holds a read transaction open. Obtained from Connection::cached().
class StatementLoan {
 public:
  explicit StatementLoan(Statement& statement) : statement_(&statement) {}
  ~StatementLoan();
  StatementLoan(const StatementLoan&) = delete;
  StatementLoan& operator=(const StatementLoan&) = delete;
  Statement* operator->() const { return statement_; }
  Statement& operator*() const { return *statement_; }

 private:
  Statement* statement_;
};

struct ConnectionOptions {
  bool read_only = false;       // SQLITE_OPEN_READONLY; the file must exist
  bool create = true;           // SQLITE_OPEN_CREATE (ignored when read_only)
  int busy_timeout_ms = 10000;  // how long a statement waits for another writer's lock
};

class Connection {
 public:
  // Opens (and, when allowed, creates) the database file. Throws DbError naming the path.
  Connection(const std::filesystem::path& path, const ConnectionOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements that return no rows we need (DDL, PRAGMA, BEGIN).
  void exec(std::string_view sql);
  // A statement prepared once per connection and reused: the fast path for hot inserts.
  StatementLoan cached(const std::string& sql);
  // Runs a query whose first column of its first row is an integer (COUNT, PRAGMA).
  std::int64_t query_int64(std::string_view sql);

  // Rows changed by the most recent INSERT/UPDATE/DELETE.
  std::int64_t changes() const;
  std::int64_t last_insert_rowid() const;
  bool read_only() const { return read_only_; }

  sqlite3* handle() const { return db_; }
  // The path as given, used in every error message.
  const std::string& path() const { return path_; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  bool read_only_ = false;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> cache_;
};

// BEGIN IMMEDIATE on construction (takes the write lock at once, so a busy database fails
// here rather than half-way); ROLLBACK on destruction unless commit() ran. NOTE: SQLite
// transactions do not nest; db/ never opens one inside another.
class Transaction {
 public:
  explicit Transaction(Connection& connection);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& connection_;
  bool done_ = false;
};

}  // namespace kvsafe::db
