#pragma once
// Helpers for the db/ tests: a temporary directory per test and small record builders.
// Every test uses real SQLite files; nothing is mocked.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "db/connection.h"
#include "db/records.h"

#include "tests/testing/temp_dir.h"

namespace kvsafe::db::testing {

using kvsafe::testing::TempDir;  // tests/testing/temp_dir.h

inline CellRecord make_cell(const std::string& id, std::int64_t n_prompts, const std::string& kv = "int4") {
  CellRecord cell;
  cell.id = id;
  cell.model = "smollm2-135m";
  cell.kv_hash = "kvhash-" + kv;
  cell.kv_label = kv;
  cell.kv_json = "{\"scheme\":\"" + kv + "\"}";
  cell.kv_effective_bits = 4.25;
  cell.task = "refusal";
  cell.benchmark = "advbench";
  cell.canonical_json = "{\"cell\":\"" + id + "\"}";
  cell.n_prompts = n_prompts;
  return cell;
}

inline GenerationRow make_generation(std::int64_t prompt_index) {
  GenerationRow row;
  row.prompt_index = prompt_index;
  row.prompt_id = "p" + std::to_string(prompt_index);
  row.prompt_sha256 = "sha-" + std::to_string(prompt_index);
  row.rendered_sha256 = "rendered-" + std::to_string(prompt_index);
  row.output_text = "I cannot help with that (" + std::to_string(prompt_index) + ")";
  row.prompt_tokens = 20;
  row.output_tokens = 12;
  row.refused = (prompt_index % 2) == 0;
  row.judge_json = "{\"judge\":\"keyword\"}";
  row.seconds = 0.5;
  return row;
}

// A complete result for a shard: one generation per prompt in [begin, end).
inline ShardResult make_result(const ShardKey& shard) {
  ShardResult result;
  result.shard = shard;
  for (std::int64_t i = shard.begin; i < shard.end; ++i) result.generations.push_back(make_generation(i));
  return result;
}

inline ExperimentRecord make_experiment(const std::string& name) {
  return ExperimentRecord{
      .name = name, .grid_path = name + ".yaml", .grid_sha256 = "sha-" + name, .grid_text = "models: [smollm2]\n"};
}

// COUNT(*) of a table through a separate read-only connection (sees only committed data).
inline std::int64_t count_rows(const std::filesystem::path& db, const std::string& table_and_where) {
  Connection connection(db, ConnectionOptions{.read_only = true, .create = false});
  return connection.query_int64("SELECT COUNT(*) FROM " + table_and_where);
}

}  // namespace kvsafe::db::testing
