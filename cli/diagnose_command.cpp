// `kvsafe diagnose GRID [--db DB] [--model NAME]`: runs (or resumes) only the grid's diagnosis
// cells (diagnose.tasks, every task when it lists none; orchestrator/diagnosis_plan.h), the
// dependent ones planned as their inputs are stored, then prints the diagnosis.
// `kvsafe diagnose DB --show` (or GRID --show) prints it from stored results, running nothing.

#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "common/error.h"
#include "common/logging.h"
#include "eval/refusal_direction_file.h"
#include "orchestrator/grid_parser.h"
#include "report/diagnosis_report.h"
#include "report/refusal_direction_report.h"
#include "runner/run_grid.h"

namespace kvsafe::cli {
namespace {

struct DiagnoseFlags {
  std::string target;  // a grid YAML, or with --show a results database
  std::string db;
  std::string model;
  bool show = false;
  std::string export_direction;  // --export-direction FILE
};

// SQLite files start with this header (sqlite.org/fileformat.html, "Magic Header String").
bool is_sqlite_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char header[16] = {};
  in.read(header, sizeof header);
  return in.gcount() == 16 && std::string_view(header, 15) == "SQLite format 3";
}

// The database a grid writes unless --db says otherwise.
std::optional<std::filesystem::path> grid_database(const DiagnoseFlags& flags, const CommandContext& context) {
  if (!flags.db.empty()) return std::filesystem::path(flags.db);
  const auto parsed = orchestrator::parse_grid_file(flags.target, context.environment, {});
  if (!parsed.ok()) {
    print_to_stderr_lines(parsed.diagnostics.format());
    return std::nullopt;
  }
  return parsed.grid->default_db_path();
}

// --export-direction: the refusal direction of the one calibration entry of the model (the
// database's only model unless --model names one) written for a grid's `steer.direction_from`.
int export_direction(const DiagnoseFlags& flags, const report::RefusalDirectionReport& directions) {
  std::vector<const report::DirectionGroup*> found;
  for (const report::DirectionGroup& g : directions.groups) {
    if (!g.direction.empty()) found.push_back(&g);
  }
  if (found.size() != 1) {
    std::string which;
    for (const report::DirectionGroup* g : found) which += "\n  " + g->model + "  " + g->setting;
    fmt::print(stderr,
               "kvsafe diagnose: --export-direction needs exactly one done full-precision calibration cell{}; "
               "this database has {}{}\n",
               flags.model.empty() ? " (--model picks a model)" : " of model " + flags.model, found.size(),
               found.empty() ? " (run a grid with a `calibration` entry and kv none first)" : ":" + which);
    return kExitFailure;
  }
  const report::DirectionGroup& g = *found.front();
  eval::RefusalDirectionFile file{.model = g.model,
                                  .cell_id = g.baseline_cell,
                                  .setting = g.setting,
                                  .harmful_prompts = g.baseline_harmful,
                                  .harmless_prompts = g.baseline_harmless,
                                  .directions = g.direction};
  eval::write_refusal_direction_file(flags.export_direction, file);
  fmt::print(
      "kvsafe diagnose: wrote the refusal direction of {} ({} layers, {} harmful + {} harmless prompts, "
      "cell {}) to {}\n",
      g.model, g.direction.size(), g.baseline_harmful, g.baseline_harmless, g.baseline_cell.substr(0, 16),
      flags.export_direction);
  return kExitOk;
}

int show(const DiagnoseFlags& flags, const CommandContext& context, std::optional<std::int64_t> experiment) {
  std::filesystem::path db;
  if (is_sqlite_file(flags.target)) {
    db = flags.target;
  } else {
    const auto from_grid = grid_database(flags, context);
    if (!from_grid) return kExitFailure;
    db = *from_grid;
  }
  if (!std::filesystem::exists(db)) {
    fmt::print(stderr, "kvsafe diagnose: {}: no such database (run `kvsafe diagnose GRID` first)\n", db.string());
    return kExitFailure;
  }
  report::DiagnosisReportOptions options;
  options.experiment_id = experiment;
  if (!flags.model.empty()) options.model = flags.model;
  const report::DiagnosisReport report = report::read_diagnosis_report(db, options);
  report::RefusalDirectionReportOptions direction_options;
  direction_options.model = options.model;
  direction_options.experiment_id = experiment;
  const report::RefusalDirectionReport directions = report::read_refusal_direction_report(db, direction_options);
  if (!flags.export_direction.empty()) return export_direction(flags, directions);
  // The refusal direction comes from a grid's calibration entry (kvsafe run), not from
  // diagnose.tasks: a database may hold either without the other.
  if (!report.models.empty() || directions.groups.empty()) report::print_diagnosis_report(std::cout, report);
  if (!report.models.empty() && !directions.groups.empty()) std::cout << "\n";
  report::print_refusal_direction_report(std::cout, directions);
  return kExitOk;
}

int run_diagnose(const DiagnoseFlags& flags, CommandContext& context) {
  if (!std::filesystem::exists(flags.target)) {
    fmt::print(stderr, "kvsafe diagnose: {}: no such file\n", flags.target);
    return kExitUsage;
  }
  // --export-direction reads stored results as --show does: it runs nothing either.
  if (flags.show || !flags.export_direction.empty()) return show(flags, context, std::nullopt);
  if (is_sqlite_file(flags.target)) {
    fmt::print(stderr,
               "kvsafe diagnose: {} is a results database: add --show to print its diagnosis, or give the "
               "grid to run one\n",
               flags.target);
    return kExitUsage;
  }
  runner::RunGridOptions options{.grid_path = flags.target,
                                 .db_path = flags.db,
                                 .command_line = context.command_line,
                                 .environment = context.environment,
                                 .live_progress = ::isatty(STDERR_FILENO) == 1,
                                 .diagnose_only = true};
  if (!flags.model.empty()) options.diagnose_model = flags.model;
  const runner::RunGridResult result = runner::run_grid(options);
  if (result.rank != 0) return result.exit_code;
  DiagnoseFlags stored = flags;
  stored.target = result.db_path.string();
  std::cout << "\n";
  const int shown = show(stored, context, result.experiment_id);
  for (const std::string& line : result.diagnosis_waiting) std::cout << "not planned: " << line << "\n";
  return result.exit_code != kExitOk ? result.exit_code : shown;
}

}  // namespace

void register_diagnose(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<DiagnoseFlags>();
  auto* command = app.add_subcommand(
      "diagnose",
      "Diagnose why KV quantization breaks refusals (arXiv 2606.09864 §5-6): each layer alone quantized on the\n"
      "calibration prompts finds the critical layers; the critical layer per tensor vs per channel gives PCR; PCR\n"
      "and the layer profile give the failure mode and its fix, which protection and mitigation cells verify.\n"
      "Dependent cells are planned as their inputs are stored; rerunning resumes. --show prints stored results.");
  command->add_option("target", flags->target, "Grid file (YAML); with --show, a results database or a grid")
      ->required();
  command->add_option("--db", flags->db, "Results database (default results/<grid name>.db)");
  command->add_option("--model", flags->model, "Only this model of the grid");
  command->add_flag("--show", flags->show, "Print the diagnosis from stored results; run nothing");
  command->add_option("--export-direction", flags->export_direction,
                      "Write the refusal direction of the full-precision calibration cell to FILE (JSON, for a "
                      "grid's steer.direction_from) instead of printing the diagnosis");
  command->callback([flags, &context] { context.exit_code = run_diagnose(*flags, context); });
}

}  // namespace kvsafe::cli
