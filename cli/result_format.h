#pragma once
// How `kvsafe query` prints a result: an aligned text table (default), CSV (RFC 4180) or
// JSON (an array of objects keyed by column name, values keeping their SQLite type).

#include <string>

#include "db/readonly_query.h"

namespace kvsafe::cli {

enum class ResultFormat { kTable, kCsv, kJson };

std::string format_query_result(const db::QueryResult& result, ResultFormat format);

}  // namespace kvsafe::cli
