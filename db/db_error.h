#pragma once
// DbError: the one exception type db/ throws on purpose. Its message always names the
// database file (or its writer-lock file), so a user who runs several databases knows
// which one is wrong.

#include <string>

#include "common/error.h"

namespace kvsafe::db {

class DbError : public InputError {
 public:
  // sqlite_code: the SQLite result code behind the failure (SQLITE_BUSY, SQLITE_CONSTRAINT,
  // ...), or 0 when kvsafe itself refused (a lock held, a schema too new, a write through a
  // read-only query).
  explicit DbError(const std::string& message, int sqlite_code = 0) : InputError(message), sqlite_code_(sqlite_code) {}

  int sqlite_code() const { return sqlite_code_; }

 private:
  int sqlite_code_;
};

}  // namespace kvsafe::db
