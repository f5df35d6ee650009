#include "orchestrator/registration.h"

#include "common/sha256.h"
#include "db/store.h"
#include "orchestrator/cell_identity.h"
#include "orchestrator/kv_spec.h"

namespace kvsafe::orchestrator {

db::CellRecord to_cell_record(const Cell& cell) {
  const std::string kv_json = canonical_json(cell.kv);
  return db::CellRecord{.id = cell.id,
                        .model = cell.model.name,
                        .kv_hash = sha256_hex(kv_json),
                        .kv_label = cell.kv_label,
                        .kv_json = kv_json,
                        .kv_effective_bits = cell.effective_bits,
                        .task = std::string(to_string(cell.task())),
                        .benchmark = cell.benchmark.name,
                        .canonical_json = canonical_json(cell),
                        .n_prompts = cell.n_prompts};
}

RegistrationSummary register_grid(db::Store& store, const GridSpec& grid, const std::vector<Cell>& cells,
                                  const GridSource& source) {
  RegistrationSummary summary;
  summary.experiment_id = store.register_experiment(db::ExperimentRecord{
      .name = grid.name, .grid_path = source.path, .grid_sha256 = sha256_hex(source.text), .grid_text = source.text});
  for (const ModelSpec& model : grid.models) {
    // NOTE: the weights' sha256 and architecture are filled when a worker loads the
    // model (issue 7); hashing 100 GB of weights here would make registration slow.
    store.register_model(db::ModelRecord{.name = model.name,
                                         .path = model.path.string(),
                                         .n_params = static_cast<std::int64_t>(model.parameter_count().value_or(0))});
  }
  std::vector<db::CellRecord> records;
  records.reserve(cells.size());
  for (const Cell& cell : cells) records.push_back(to_cell_record(cell));
  summary.cells = store.register_cells(summary.experiment_id, records, grid.execution.shard_size);
  return summary;
}

}  // namespace kvsafe::orchestrator
