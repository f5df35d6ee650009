#pragma once
// The diagnosis cells of a run, planned while it goes on (orchestrator/diagnosis_plan.h): the
// scheduler on rank 0 calls a DiagnosisDeriver before its first assignment and each time a cell
// completes (SchedulerOptions::derive_cells). Each call reads what the database holds now (the
// layer ablation's verdicts, through report/diagnosis_report.h), plans every cell that can be
// planned with it, registers the new ones with their shards, their benchmarks' prompts and
// their roles, and returns them all. The plan is a pure function of the grid and the stored
// results, so a resume, or a run with another number of ranks, finds the same cell ids.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "db/store.h"
#include "orchestrator/cell.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::runner {

struct DiagnosisDerivationOptions {
  std::vector<orchestrator::DiagnosisTask> tasks{};  // what to plan
  std::vector<std::string> models{};                 // models diagnosed (grid names)
  std::int64_t experiment_id = 0;                    // the run's experiment: roles and cells are linked to it
  std::filesystem::path data_dir{};                  // benchmark prompts for the prompts table
};

class DiagnosisDeriver {
 public:
  // Reads each model's layer count now (the grid's `layers`, else the model file's header):
  // throws ModelFileError / InputError naming the file when it cannot.
  DiagnosisDeriver(db::Store& store, const orchestrator::GridSpec& grid, DiagnosisDerivationOptions options);

  // Every cell plannable from what is stored now, registered; see the header comment.
  // `completed`: the cell that just completed ("" to plan unconditionally); a cell no plan
  // depends on (not a calibration baseline, layer-ablation or key-magnitudes cell) returns
  // nothing at once, so a large grid's commits cost no database reads.
  std::vector<orchestrator::Cell> derive(const std::string& completed = "");
  // Writes each diagnosed model's decision (mode, fix, the numbers that decided them, the layer
  // profile) into the database's diagnoses and pcr_layers tables (db::Store::record_diagnosis),
  // from the stored results; models without a decision yet are left out. Returns how many.
  std::int64_t record_diagnoses();
  // Why some tasks planned nothing yet, as the last derive() found it.
  const std::vector<std::string>& waiting() const { return waiting_; }

 private:
  db::Store& store_;
  const orchestrator::GridSpec& grid_;
  DiagnosisDerivationOptions options_;
  std::map<std::string, std::int64_t> layers_{};  // by model name
  std::set<std::string> prompts_registered_{};    // benchmarks whose prompts are in the database
  std::vector<std::string> waiting_{};
  std::set<std::string> dependencies_{};  // cells whose completion can unlock more (empty: not planned yet)
};

// The layers of `model`: its `layers` in the grid, else the model file's header.
std::int64_t model_layer_count(const orchestrator::ModelSpec& model);

}  // namespace kvsafe::runner
