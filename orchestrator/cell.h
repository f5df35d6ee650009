#pragma once
// One unit of work in a grid: (model, kv spec, task on a benchmark, generation
// settings). Self-contained (it copies the parts it needs), so it can be registered,
// shipped to a worker and hashed without the GridSpec it came from.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "orchestrator/grid_spec.h"

namespace kvsafe::orchestrator {

struct Cell {
  std::string id{};  // lower-case hex SHA-256 (64 chars) of canonical_json(*this); see cell_identity.h

  ModelSpec model{};
  KvSpec kv{};                                     // canonical
  BenchmarkSpec benchmark{};                       // benchmark.task is the cell's task
  std::optional<GenerationSettings> generation{};  // absent for tasks that do not generate (perplexity)
  // Ids of the cells whose results chose this cell's settings (a diagnosis cell planned from the
  // critical layers; orchestrator/diagnosis_plan.h), sorted; empty for a grid's own cells.
  std::vector<std::string> derived_from{};

  // Where the parts came from in the GridSpec (for reports and the planner).
  std::size_t model_index = 0;
  std::size_t kv_index = 0;
  std::size_t benchmark_index = 0;
  std::optional<std::size_t> generation_index{};

  std::string kv_label{};      // kv_label(kv)
  double effective_bits = 16;  // effective_bits(kv) with the model's layer count when known
  std::int64_t n_prompts = 0;  // prompts after limit/sample (perplexity: windows)

  Task task() const { return benchmark.task; }
  // The first 16 hex characters: what tables and logs show.
  std::string short_id() const { return id.substr(0, 16); }
};

}  // namespace kvsafe::orchestrator
