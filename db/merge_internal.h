#pragma once
// Private to merge*.cpp: the pieces merge.cpp (inputs, checks, the command's flow) and
// merge_input.cpp (one input copied into OUT) share. SQL here names attached schemas: OUT is
// "main", the input being merged "src", a pair of inputs compared before writing "a" and "b".

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "db/merge.h"
#include "db/records.h"

namespace kvsafe::db {

class Connection;
class Statement;

namespace merge_detail {

// Statements prepared once per SQL text for the life of the cache (one check, one input's
// merge): a merge runs the same few statements for every shard. Destroy it before DETACH.
class StatementCache {
 public:
  explicit StatementCache(Connection& connection);
  ~StatementCache();
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;
  // The statement for `sql`, reset and without bindings.
  Statement& get(const std::string& sql);
  Connection& connection() { return connection_; }

 private:
  Connection& connection_;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> statements_;
};

// The per-prompt rows a shard commits (Store::commit_shard): where its prompt (or window, or
// shard) index lives, the columns that with cell_id key a row, and the ones that must agree for
// two done shards to count as identical. A row belongs to shard [begin, end) when its index is
// in that range (direction_sums' index is the shard's begin: shards never overlap).
struct ShardRowsTable {
  std::string_view table;
  std::string_view index_column;
  std::vector<std::string_view> key_columns;    // with cell_id, the row's unique key
  std::vector<std::string_view> value_columns;  // compared; the others (timings, ids) are not
  bool per_prompt = true;                       // its index is a prompt or window (not a shard begin)
};

const std::vector<ShardRowsTable>& shard_rows_tables();

// What differs between one shard's rows in two schemas.
struct ShardDifference {
  std::set<std::int64_t> prompts{};  // prompt or window indices with differing rows
  bool direction_sums = false;
  bool empty() const { return prompts.empty() && !direction_sums; }
};

ShardDifference shard_difference(StatementCache& statements, std::string_view a, std::string_view b,
                                 const ShardKey& shard);

// The shard's provenance in `schema`, shown as `display` (the file as the user named it).
ShardProvenance shard_provenance(StatementCache& statements, std::string_view schema, const std::string& display,
                                 const ShardKey& shard);

// What --prefer newest compares: the writing run's start, else the shard's commit time.
std::string newest_key(const ShardProvenance& provenance);

// The table's columns in `schema`, in order, without those in `except`.
std::vector<std::string> table_columns(Connection& connection, std::string_view schema, std::string_view table,
                                       const std::set<std::string, std::less<>>& except = {});
// "p.a, p.b, p.c" (prefix "p.") or "a, b, c" (prefix "").
std::string join_columns(const std::vector<std::string>& columns, std::string_view prefix = "");

// Shards copied into OUT by this merge, with where they came from (a later input conflicting
// with one of them names that input, not OUT).
using ShardOrigins = std::map<ShardKey, ShardProvenance>;

struct InputMerge {
  std::string out_display;    // OUT as given
  std::string input_display;  // the input as given
  Prefer prefer = Prefer::kNone;
};

// Copies the attached schema "src" into "main", inside the caller's transaction. Conflicts
// and notes are appended to `result`; `origins` gains the shards copied.
MergeCounts merge_attached_input(Connection& connection, const InputMerge& input, ShardOrigins& origins,
                                 MergeResult& result);

}  // namespace merge_detail
}  // namespace kvsafe::db
