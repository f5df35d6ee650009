#pragma once
// StatusReport: what `kvsafe status` shows — per experiment, its cells by state and the
// failed cells with their last error.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/records.h"

namespace kvsafe::db {

class Connection;

struct CellFailure {
  std::string cell_id{};
  std::string model{};
  std::string kv_label{};
  std::string task{};
  std::string benchmark{};
  std::int64_t attempts = 0;  // the most attempts any of its shards took
  std::string error{};        // the error text of the shard that gave up
};

struct ExperimentStatus {
  std::int64_t id = 0;
  std::string name{};
  StatusCounts cells{};
  StatusCounts shards{};
  std::int64_t prompts_done = 0;
  std::int64_t prompts_total = 0;
  std::vector<CellFailure> failures{};  // ordered by cell id
};

struct StatusReport {
  std::vector<ExperimentStatus> experiments{};  // ordered by experiment id
};

// Counts of cells and shards per state and prompts done/total, for one experiment (its
// cells, through experiment_cells) or for the whole database.
Progress read_progress(Connection& connection, std::optional<std::int64_t> experiment_id);

// Reads the report from an open database (read-only statements only).
StatusReport read_status_report(Connection& connection);

// Plain-text rendering, one experiment per block; the CLI decides where it goes.
std::string format_status_report(const StatusReport& report);

}  // namespace kvsafe::db
