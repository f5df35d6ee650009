#include "db/status_report.h"

#include <fmt/format.h>

#include "db/connection.h"
#include "db/store_internal.h"

namespace kvsafe::db {
namespace {

void add_count(StatusCounts& counts, std::string_view status, std::int64_t n) {
  switch (stored_shard_status(status)) {
    case ShardStatus::kPending:
      counts.pending += n;
      break;
    case ShardStatus::kRunning:
      counts.running += n;
      break;
    case ShardStatus::kDone:
      counts.done += n;
      break;
    case ShardStatus::kFailed:
      counts.failed += n;
      break;
  }
}

}  // namespace

Progress read_progress(Connection& connection, std::optional<std::int64_t> experiment_id) {
  Progress progress;
  // NOTE: ?1 IS NULL selects the whole database; otherwise only the experiment's cells.
  {
    auto cells = connection.cached(
        "SELECT status, COUNT(*) FROM cells WHERE ?1 IS NULL OR id IN "
        "(SELECT cell_id FROM experiment_cells WHERE experiment_id = ?1) GROUP BY status");
    cells->bind(1, experiment_id);
    while (cells->step()) add_count(progress.cells, cells->column_text(0), cells->column_int64(1));
  }
  auto shards = connection.cached(
      "SELECT status, COUNT(*), TOTAL(end - begin) FROM shards WHERE ?1 IS NULL OR cell_id IN "
      "(SELECT cell_id FROM experiment_cells WHERE experiment_id = ?1) GROUP BY status");
  shards->bind(1, experiment_id);
  while (shards->step()) {
    const std::string status = shards->column_text(0);
    const std::int64_t prompts = shards->column_int64(2);
    add_count(progress.shards, status, shards->column_int64(1));
    progress.prompts_total += prompts;
    if (status == "done") progress.prompts_done += prompts;
  }
  return progress;
}

StatusReport read_status_report(Connection& connection) {
  StatusReport report;
  {
    auto experiments = connection.cached("SELECT id, name FROM experiments ORDER BY id");
    while (experiments->step()) {
      ExperimentStatus experiment;
      experiment.id = experiments->column_int64(0);
      experiment.name = experiments->column_text(1);
      report.experiments.push_back(std::move(experiment));
    }
  }
  for (ExperimentStatus& experiment : report.experiments) {
    const Progress progress = read_progress(connection, experiment.id);
    experiment.cells = progress.cells;
    experiment.shards = progress.shards;
    experiment.prompts_done = progress.prompts_done;
    experiment.prompts_total = progress.prompts_total;
    auto failures = connection.cached(
        "SELECT c.id, c.model, IFNULL(k.label, c.kv_hash), c.task, c.benchmark, c.attempts, IFNULL(c.error, '') "
        "FROM experiment_cells e JOIN cells c ON c.id = e.cell_id LEFT JOIN kv_specs k ON k.hash = c.kv_hash "
        "WHERE e.experiment_id = ?1 AND c.status = 'failed' ORDER BY c.id");
    failures->bind(1, experiment.id);
    while (failures->step()) {
      experiment.failures.push_back(CellFailure{.cell_id = failures->column_text(0),
                                                .model = failures->column_text(1),
                                                .kv_label = failures->column_text(2),
                                                .task = failures->column_text(3),
                                                .benchmark = failures->column_text(4),
                                                .attempts = failures->column_int64(5),
                                                .error = failures->column_text(6)});
    }
  }
  return report;
}

std::string format_status_report(const StatusReport& report) {
  if (report.experiments.empty()) return "no experiments registered\n";
  std::string out;
  for (const ExperimentStatus& e : report.experiments) {
    const double percent =
        e.prompts_total > 0 ? 100.0 * static_cast<double>(e.prompts_done) / static_cast<double>(e.prompts_total) : 0.0;
    out += fmt::format(
        "experiment {} (id {}): {} cells: {} done, {} running, {} pending, {} failed; "
        "prompts {}/{} ({:.1f}%)\n",
        e.name, e.id, e.cells.total(), e.cells.done, e.cells.running, e.cells.pending, e.cells.failed, e.prompts_done,
        e.prompts_total, percent);
    for (const CellFailure& f : e.failures) {
      out += fmt::format("  failed cell {}: model {}, kv {}, {} on {}, {} attempts: {}\n", f.cell_id, f.model,
                         f.kv_label, f.task, f.benchmark, f.attempts, f.error);
    }
  }
  return out;
}

}  // namespace kvsafe::db
