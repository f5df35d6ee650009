#include "db/connection.h"

#include <spdlog/spdlog.h>

#include <system_error>
#include <utility>

#include "common/error.h"
#include "db/db_error.h"
#include "db/sqlite_check.h"

namespace kvsafe::db {

// ---- Statement ----

Statement::Statement(Connection& connection, std::string_view sql) : connection_(connection), sql_(sql) {
  const char* tail = nullptr;
  KVSAFE_SQLITE_CHECK(connection_.handle(), connection_.path(), sql_,
                      sqlite3_prepare_v3(connection_.handle(), sql_.data(), static_cast<int>(sql_.size()),
                                         SQLITE_PREPARE_PERSISTENT, &statement_, &tail));
  KVSAFE_ASSERT(statement_ != nullptr, "empty SQL statement: ", sql_);
}

Statement::~Statement() {
  sqlite3_finalize(statement_);
}

Statement& Statement::bind(int index, std::int64_t value) {
  KVSAFE_SQLITE_CHECK(connection_.handle(), connection_.path(), sql_, sqlite3_bind_int64(statement_, index, value));
  return *this;
}

Statement& Statement::bind(int index, double value) {
  KVSAFE_SQLITE_CHECK(connection_.handle(), connection_.path(), sql_, sqlite3_bind_double(statement_, index, value));
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  KVSAFE_SQLITE_CHECK(
      connection_.handle(), connection_.path(), sql_,
      sqlite3_bind_text64(statement_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Statement& Statement::bind_blob(int index, std::span<const std::byte> bytes) {
  KVSAFE_SQLITE_CHECK(connection_.handle(), connection_.path(), sql_,
                      sqlite3_bind_blob64(statement_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::bind_null(int index) {
  KVSAFE_SQLITE_CHECK(connection_.handle(), connection_.path(), sql_, sqlite3_bind_null(statement_, index));
  return *this;
}

bool Statement::step() {
  return KVSAFE_SQLITE_CHECK(connection_.handle(), connection_.path(), sql_, sqlite3_step(statement_)) == SQLITE_ROW;
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() {
  // NOTE: sqlite3_reset repeats the error of the last step; that error was already
  // reported by step(), so it is not checked again here.
  sqlite3_reset(statement_);
  KVSAFE_SQLITE_CHECK(connection_.handle(), connection_.path(), sql_, sqlite3_clear_bindings(statement_));
}

bool Statement::column_is_null(int column) const {
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

std::int64_t Statement::column_int64(int column) const {
  return sqlite3_column_int64(statement_, column);
}

double Statement::column_double(int column) const {
  return sqlite3_column_double(statement_, column);
}

std::string Statement::column_text(int column) const {
  const unsigned char* text = sqlite3_column_text(statement_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
}

std::optional<std::int64_t> Statement::column_optional_int64(int column) const {
  if (column_is_null(column)) return std::nullopt;
  return column_int64(column);
}

std::optional<double> Statement::column_optional_double(int column) const {
  if (column_is_null(column)) return std::nullopt;
  return column_double(column);
}

StatementLoan::~StatementLoan() {
  sqlite3_reset(statement_->handle());
  sqlite3_clear_bindings(statement_->handle());
}

// ---- Connection ----

Connection::Connection(const std::filesystem::path& path, const ConnectionOptions& options)
    : path_(path.string()), read_only_(options.read_only) {
  std::error_code ec;
  if (options.read_only || !options.create) {
    if (!std::filesystem::exists(path, ec)) {
      throw DbError(kvsafe::detail::concat(path_, ": no such database file (kvsafe does not create it when opening ",
                                           options.read_only ? "read-only" : "without create", ")"));
    }
  }
  if (std::filesystem::is_directory(path, ec)) {
    throw DbError(kvsafe::detail::concat(path_, " is a directory, not a database file"));
  }
  int flags = SQLITE_OPEN_NOMUTEX;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create) flags |= SQLITE_OPEN_CREATE;
  }
  try {
    // NOTE: sqlite3_open_v2 allocates a handle even when it fails; the catch frees it.
    KVSAFE_SQLITE_CHECK(db_, path_, "opening the database", sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr));
    KVSAFE_SQLITE_CHECK(db_, path_, "", sqlite3_extended_result_codes(db_, 1));
    KVSAFE_SQLITE_CHECK(db_, path_, "", sqlite3_busy_timeout(db_, options.busy_timeout_ms));
  } catch (...) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

Connection::~Connection() {
  cache_.clear();  // statements must be finalized before the connection closes
  const int rc = sqlite3_close_v2(db_);
  if (rc != SQLITE_OK) {
    spdlog::warn("{}: closing the database failed: {}", path_, sqlite3_errstr(rc));
  }
}

void Connection::exec(std::string_view sql) {
  const std::string text(sql);
  // NOTE: no error-message out-parameter: sqlite3_errmsg(db_) holds the same text.
  KVSAFE_SQLITE_CHECK(db_, path_, text, sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr));
}

StatementLoan Connection::cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    it = cache_.emplace(sql, std::make_unique<Statement>(*this, sql)).first;
  }
  return StatementLoan(*it->second);
}

std::int64_t Connection::query_int64(std::string_view sql) {
  Statement statement(*this, sql);
  KVSAFE_ASSERT(statement.step(), "query returned no row: ", sql);
  return statement.column_int64(0);
}

std::int64_t Connection::changes() const {
  return sqlite3_changes64(db_);
}

std::int64_t Connection::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

// ---- Transaction ----

Transaction::Transaction(Connection& connection) : connection_(connection) {
  connection_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (done_) return;
  // NOTE: never throw from a destructor; a failed ROLLBACK (e.g. SQLite already rolled back
  // after an I/O error) leaves nothing to undo, so it is logged and ignored.
  if (sqlite3_get_autocommit(connection_.handle()) == 0) {
    const int rc = sqlite3_exec(connection_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      spdlog::warn("{}: ROLLBACK failed: {}", connection_.path(), sqlite3_errmsg(connection_.handle()));
    }
  }
}

void Transaction::commit() {
  connection_.exec("COMMIT");
  done_ = true;
}

}  // namespace kvsafe::db
