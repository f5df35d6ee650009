#pragma once
// ShardExecutor: runs one shard -- prompts [begin, end) of one grid cell -- on this rank and
// returns the rows the scheduler commits as one transaction (db::ShardResult). It is the
// whole of a worker's science: load the cell's model (kept loaded while the next shards use
// the same model: model affinity), read the benchmark's prompts from the data directory,
// render them with the model's chat template, generate with the cell's KV quantizer
// (engine::make_kv_path) in batches of the cell's batch size, judge the answers; or, for
// perplexity cells, score the cell's token windows. The scheduler never sees a tensor.
//
// Both the in-process runner (`kvsafe run` with one rank) and MPI worker ranks call it,
// so a shard's rows do not depend on how many ranks there are.
//
//   ShardExecutor executor({.data_dir = env.data_dir});
//   db::ShardResult rows = executor.run(cell, /*begin=*/0, /*end=*/8);
//
// Errors (a missing dataset, a bad model file, out of memory) are thrown as
// kvsafe::Error subclasses with a message naming the file, cell and shard; the caller turns
// them into a failed attempt. Fault injection for tests (KVSAFE_FAULT) is not done here.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "db/records.h"
#include "orchestrator/cell.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::engine {
class Model;
}  // namespace kvsafe::engine

namespace kvsafe::worker {

struct ShardExecutorOptions {
  std::filesystem::path data_dir{};  // benchmark prompts ($KVSAFE_DATA, common/environment.h)
  std::string device = "cpu";        // engine device: "cpu", "cuda", "cuda:N"
  int threads = 0;                   // CPU intra-op threads; 0 = one per core (see docs/run.md)
  orchestrator::JudgeSpec judge{};   // the grid's refusal judge (keyword by default)
};

// Progress of the shard in flight, for heartbeats and the progress line.
struct ShardProgress {
  std::int64_t prompts_done = 0;      // prompts finished in this shard
  std::int64_t tokens_generated = 0;  // tokens generated in this shard so far
};
using ShardProgressCallback = std::function<void(const ShardProgress&)>;

class ShardExecutor {
 public:
  explicit ShardExecutor(ShardExecutorOptions options);
  ~ShardExecutor();
  ShardExecutor(const ShardExecutor&) = delete;
  ShardExecutor& operator=(const ShardExecutor&) = delete;

  // Runs prompts [begin, end) of `cell` (perplexity cells: windows [begin, end)) and returns
  // its rows; result.shard = {cell.id, begin, end}. Loads cell.model unless it is the model
  // already held (the previous one is released first: one model at a time). A speculative cell
  // also loads its draft model (generation.speculative.draft) unless it is held or is cell.model
  // itself, and keeps it beside the target (one draft at a time); a draft without the target's
  // vocabulary (size and every token's text) is an InputError naming both.
  db::ShardResult run(const orchestrator::Cell& cell, std::int64_t begin, std::int64_t end,
                      const ShardProgressCallback& on_progress = {});

  // The grid name of the model held now; empty when none.
  const std::string& loaded_model() const;

  // The provenance of the models loaded since the last call (worker/model_provenance.h): a
  // target, and a speculative cell's draft. The worker loop sends them with the next shard
  // result, so rank 0 records them for the run.
  std::vector<db::ModelRecord> take_models_loaded();

 private:
  struct State;
  // The draft model of a speculative cell, loaded now unless held (the target must be loaded):
  // the target's own model when the cell drafts for itself; nullptr for a plain cell.
  const engine::Model* draft_for(const orchestrator::Cell& cell);
  ShardExecutorOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace kvsafe::worker
