#pragma once
// The cost model behind `kvsafe plan`: how many GPU-hours a grid takes and how long it
// runs on N GPUs. It is an estimate from first principles, not a measurement:
//  - decode is memory-bound: each step reads every weight once, so one step of a batch
//    takes weight_bytes / (bandwidth * efficiency * gpus) seconds, whatever the batch size;
//  - prefill (and perplexity windows) is compute-bound: 2 * params FLOPs per token at
//    dense_tflops * efficiency per GPU;
//  - a model that does not fit one GPU's memory runs tensor-parallel over the fewest GPUs
//    that hold it (weights only; KV of 4 prompts x 2k tokens is small beside them);
//  - loading a model costs weight_bytes / load_gb_per_s seconds every time a worker
//    switches to it.
// Every constant is a field below with its default; `kvsafe plan` lets users override them.

#include <cstdint>
#include <string>
#include <vector>

namespace kvsafe::orchestrator {

struct DeviceProfile {
  std::string name = "h100";            // built-in names: h100, h200, a100, l40s, cpu
  double memory_bandwidth_gb_s = 3350;  // HBM bandwidth per GPU (H100 SXM: 3.35 TB/s)
  double memory_gib = 80;               // memory per GPU
  double dense_tflops = 989;            // bf16 dense tensor-core peak per GPU
  double bytes_per_param = 2;           // bf16 weights on GPUs; float32 (4) on CPU
};

// Returns the built-in profile with this name; throws InputError listing the known names.
DeviceProfile device_profile(const std::string& name);
// The names device_profile() accepts.
std::vector<std::string> device_profile_names();

struct CostModelOptions {
  DeviceProfile device;                 // the GPU kind the grid runs on
  double bandwidth_efficiency = 0.6;    // fraction of peak bandwidth a decode step achieves
  double compute_efficiency = 0.4;      // fraction of peak FLOPs prefill achieves
  double load_gb_per_s = 2.0;           // model load speed from the file system
  double weight_memory_fraction = 0.8;  // share of GPU memory weights may take
  double mean_prompt_tokens = 96;       // chat-templated prompt length (AdvBench-like)
  double generated_fraction = 1.0;      // share of max_new_tokens actually generated (1 = upper bound)
  // Speculative cells: the share of draft proposals the target accepts. 0 is the upper bound
  // (every round yields one token); a full-precision self-draft accepts all of them (1).
  double speculative_acceptance = 0.0;
};

// What one cell asks of the hardware; filled by the planner from a grid cell.
struct CellWork {
  std::string model;                // model name (work is grouped and loaded per model)
  double params = 0;                // parameter count of the model
  std::int64_t prompts = 0;         // prompts in the cell (after limit/sample)
  std::int64_t max_new_tokens = 0;  // generation budget per prompt (0 for perplexity)
  std::int64_t batch_size = 1;      // prompts decoded together
  std::int64_t shard_size = 32;     // prompts per shard (the scheduling unit)
  std::int64_t scored_tokens = 0;   // perplexity: tokens pushed through prefill windows
  // Speculative decoding (generation.speculative): the draft's parameter count (0: plain
  // decoding) and its proposals per round. Such cells decode one prompt at a time; a round is
  // draft_tokens draft steps and one target verify, and yields 1 + acceptance * draft_tokens
  // tokens.
  double draft_params = 0;
  std::int64_t draft_tokens = 0;
};

struct CellCost {
  int gpus = 1;                 // GPUs one replica of the model needs
  double prefill_tokens = 0;    // prompt (or window) tokens processed
  double generated_tokens = 0;  // expected new tokens
  double gpu_seconds = 0;       // gpus * wall seconds on one replica, without load time
  double load_seconds = 0;      // one load of the model
};

// The estimate for one cell. Throws InputError when params <= 0 (the planner names the model).
CellCost estimate_cell(const CellWork& work, const CostModelOptions& options);

struct MakespanEstimate {
  double seconds = 0;   // wall time until the last shard finishes
  int model_loads = 0;  // loads the simulated schedule needed
};

// Simulates the scheduler's policy on `gpus` GPUs: shards of the largest models first,
// a worker keeps its loaded model while that model has shards left, tensor-parallel
// models occupy several GPUs at once. Throws InputError when a model needs more GPUs
// than there are.
MakespanEstimate estimate_makespan(const std::vector<CellWork>& cells, int gpus, const CostModelOptions& options);

}  // namespace kvsafe::orchestrator
