#pragma once
// Builds a real results database from a real grid file: parse, expand, register, then
// commit or fail shards, exactly as the runner will. Used by the CLI tests.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/environment.h"
#include "db/store.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"
#include "orchestrator/registration.h"

namespace kvsafe::testing {

struct GridDatabase {
  std::vector<orchestrator::Cell> cells;
  std::unique_ptr<db::Store> store;
};

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline GridDatabase register_grid_file(const std::filesystem::path& grid_path, const std::filesystem::path& db_path) {
  const Environment env = Environment::from_process();
  auto parsed = orchestrator::parse_grid_file(grid_path, env, {});
  if (!parsed.ok()) throw std::runtime_error(parsed.diagnostics.format());
  GridDatabase result;
  result.cells = orchestrator::expand_grid(*parsed.grid);
  result.store = db::Store::open(db_path, {});
  orchestrator::register_grid(*result.store, *parsed.grid, result.cells,
                              {.path = grid_path.string(), .text = slurp(grid_path)});
  return result;
}

// Claims and commits every shard of `cell` with one trivial generation row per prompt.
inline void finish_cell(db::Store& store, const orchestrator::Cell& cell, std::int64_t shard_size) {
  for (std::int64_t begin = 0; begin < cell.n_prompts; begin += shard_size) {
    const std::int64_t end = std::min(cell.n_prompts, begin + shard_size);
    const db::ShardKey key{.cell_id = cell.id, .begin = begin, .end = end};
    store.claim_shard(key, "test-worker");
    db::ShardResult result{.shard = key};
    for (std::int64_t i = begin; i < end; ++i) {
      result.generations.push_back(db::GenerationRow{.prompt_index = i,
                                                     .prompt_id = std::to_string(i),
                                                     .output_text = "I cannot help with that.",
                                                     .output_tokens = 6,
                                                     .refused = true});
    }
    store.commit_shard(result);
  }
}

}  // namespace kvsafe::testing
