#pragma once
// The refusal cell the worker tests run: the paper's custom prompts through one model and one KV
// label, greedy, small batches. stories260K (../shared/models, llama-2 template) by default;
// SmolLM2 from the model cache with its own template for the model-labelled tests.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "kernels/kv_quant_spec.h"
#include "orchestrator/cell.h"
#include "tests/testing/model_files.h"

namespace kvsafe::worker::test_cells {

struct CustomPromptsCellOptions {
  std::int64_t prompts = 6;     // the first N custom prompts
  std::int64_t batch_size = 2;  // generation batch
  std::int64_t max_new_tokens = 12;
  std::string id_tag = "stories";  // part of the cell id, so tests can tell their cells apart
  std::string model_name = "stories260k";
  std::filesystem::path model_path = kvsafe::testing::stories260k_gguf_path();
  std::optional<std::string> chat_template = "llama-2";  // nullopt: the template the weights carry
};

inline orchestrator::Cell custom_prompts_cell(const std::string& kv, const CustomPromptsCellOptions& options = {}) {
  orchestrator::Cell cell;
  cell.id = "0123456789abcdef-" + options.id_tag + "-" + kv;
  cell.model.name = options.model_name;
  cell.model.path = options.model_path;
  cell.model.chat_template = options.chat_template;
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
