#pragma once
// The refusal cell the worker tests run: stories260K (../shared/models) with the llama-2
// chat template on the paper's custom prompts, one KV label, greedy, small batches.

#include <cstdint>
#include <string>

#include "kernels/kv_quant_spec.h"
#include "orchestrator/cell.h"
#include "tests/testing/model_files.h"

namespace kvsafe::worker::test_cells {

struct StoriesCellOptions {
  std::int64_t prompts = 6;     // the first N custom prompts
  std::int64_t batch_size = 2;  // generation batch
  std::int64_t max_new_tokens = 12;
  std::string id_tag = "stories";  // part of the cell id, so tests can tell their cells apart
};

inline orchestrator::Cell stories_cell(const std::string& kv, const StoriesCellOptions& options = {}) {
  orchestrator::Cell cell;
  cell.id = "0123456789abcdef-" + options.id_tag + "-" + kv;
  cell.model.name = "stories260k";
  cell.model.path = kvsafe::testing::stories260k_gguf_path();
  cell.model.chat_template = "llama-2";
  cell.kv = kernels::parse_kv_label(kv);
  cell.kv_label = kv;
  cell.benchmark.name = "custom";
  cell.benchmark.task = orchestrator::Task::kRefusal;
  cell.benchmark.limit = options.prompts;
  cell.generation =
      orchestrator::GenerationSettings{.max_new_tokens = options.max_new_tokens, .batch_size = options.batch_size};
  cell.n_prompts = options.prompts;
  return cell;
}

}  // namespace kvsafe::worker::test_cells
