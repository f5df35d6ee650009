// `kvsafe tables DB [--format md|latex|csv|html] [--out DIR] [--only NAME...] [--list]`: the
// paper's tables from a results database (report/paper_tables.h). Without --out they print to
// stdout; with it, one file per table (NAME.md, NAME.tex, NAME.csv, NAME.html).

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "report/diagnosis_report.h"
#include "report/paper_tables.h"
#include "report/run_summary.h"
#include "report/table.h"

namespace kvsafe::cli {
namespace {

struct TablesFlags {
  std::string db;
  std::string format = "md";
  std::string out;
  std::vector<std::string> only;
  bool list = false;
  std::int64_t min_baseline_refusals = 10;  // fewer refusals of a baseline: its flips are undefined
};

std::string render(const report::Table& table, const std::string& format) {
  if (format == "latex") return report::render_latex(table);
  if (format == "csv") return report::render_csv(table);
  if (format == "html") return report::render_html(table);
  return report::render_markdown(table);
}

std::string extension(const std::string& format) {
  if (format == "latex") return ".tex";
  if (format == "md") return ".md";
  return "." + format;
}

int run_tables(const TablesFlags& flags) {
  if (!std::filesystem::exists(flags.db)) {
    fmt::print(stderr, "kvsafe tables: {}: no such database\n", flags.db);
    return kExitFailure;
  }
  for (const std::string& name : flags.only) {
    const auto& known = report::paper_tables();
    if (std::none_of(known.begin(), known.end(), [&](const auto& t) { return t.name == name; })) {
      fmt::print(stderr, "kvsafe tables: --only {}: no such table (`kvsafe tables DB --list` lists them)\n", name);
      return kExitUsage;
    }
  }
  std::map<std::string, report::Table> filled;
  report::DiagnosisReportOptions diagnosis;
  diagnosis.min_baseline_refusals = flags.min_baseline_refusals;
  for (report::Table& table : report::diagnosis_tables(report::read_diagnosis_report(flags.db, diagnosis))) {
    filled.emplace(table.name, std::move(table));
  }
  for (report::Table& table : report::summary_tables(
           report::summarize_run(flags.db, {.min_baseline_refusals = flags.min_baseline_refusals}))) {
    filled.emplace(table.name, std::move(table));
  }
  for (report::Table& table : report::direction_tables(
           report::read_refusal_direction_report(flags.db, {.min_baseline_refusals = flags.min_baseline_refusals}))) {
    filled.emplace(table.name, std::move(table));
  }
  if (flags.list) {
    for (const report::PaperTableInfo& info : report::paper_tables()) {
      const auto found = filled.find(std::string(info.name));
      const std::string state = found != filled.end() ? fmt::format("{} row(s)", found->second.rows.size())
                                : info.built          ? "empty: this database has no such cells yet"
                                                      : "not built";
      fmt::print("{:<30} {:<44} {}\n", info.name, state, info.source);
    }
    return kExitOk;
  }
  if (!flags.out.empty()) std::filesystem::create_directories(flags.out);
  int written = 0;
  for (const report::PaperTableInfo& info : report::paper_tables()) {
    const auto found = filled.find(std::string(info.name));
    if (found == filled.end()) continue;
    if (!flags.only.empty() && std::find(flags.only.begin(), flags.only.end(), info.name) == flags.only.end()) continue;
    const std::string text = render(found->second, flags.format);
    if (flags.out.empty()) {
      std::cout << (written > 0 ? "\n" : "") << text;
    } else {
      const auto path = std::filesystem::path(flags.out) / (std::string(info.name) + extension(flags.format));
      std::ofstream(path) << text;
      fmt::print("wrote {}\n", path.string());
    }
    ++written;
  }
  if (written == 0) {
    fmt::print(stderr, "kvsafe tables: {} fills none of the tables asked for (`--list` says what each needs)\n",
               flags.db);
  }
  return kExitOk;
}

}  // namespace

void register_tables(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<TablesFlags>();
  auto* command = app.add_subcommand(
      "tables",
      "The paper's tables from a results database, under the paper's names, every rate with n and its 95% Wilson\n"
      "CI and a missing number printed as `not run`. So far phase thresholds and the diagnosis tables (taxonomy,\n"
      "layer sensitivity, PCR framework, channel ablation, protection sweep, mitigation); --list says the rest.");
  command->add_option("db", flags->db, "Results database")->required();
  command->add_option("--format", flags->format, "md (default), latex, csv or html")
      ->check(CLI::IsMember({"md", "latex", "csv", "html"}));
  command->add_option("--out", flags->out, "Folder for one file per table (default: print them)");
  command->add_option("--only", flags->only, "Only these tables (by name)");
  command->add_flag("--list", flags->list, "List every table of the paper: filled, empty, or not built");
  command
      ->add_option("--min-baseline-refusals", flags->min_baseline_refusals,
                   "A baseline that refused fewer harmful prompts leaves its flips undefined (default 10)")
      ->check(CLI::NonNegativeNumber);
  command->callback([flags, &context] { context.exit_code = run_tables(*flags); });
}

}  // namespace kvsafe::cli
