// `kvsafe tables DB [--format md|latex|csv|html] [--out DIR] [--only NAME...] [--list] [--judge NAME]`:
// the paper's tables from a results database (report/database_tables.h). Without --out they
// print to stdout; with it, one file per table (NAME.md, NAME.tex, NAME.csv, NAME.html).

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/verdict_options.h"
#include "common/error.h"
#include "report/database_tables.h"
#include "report/paper_tables.h"
#include "report/table.h"

namespace kvsafe::cli {
namespace {

struct TablesFlags {
  std::string db;
  std::string format = "md";
  std::string out;
  std::vector<std::string> only;
  bool list = false;
  VerdictFlags verdicts;
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
  std::optional<std::string> judge;
  if (const auto exit = choose_judge_or_exit("tables", flags.db, flags.verdicts, judge)) return *exit;
  const std::vector<report::Table> filled = report::database_tables(
      flags.db, {.min_baseline_refusals = flags.verdicts.min_baseline_refusals, .judge = judge});
  const auto find = [&](std::string_view name) {
    return std::find_if(filled.begin(), filled.end(), [&](const report::Table& t) { return t.name == name; });
  };
  if (flags.list) {
    for (const report::PaperTableInfo& info : report::paper_tables()) {
      const auto found = find(info.name);
      const std::string state = found != filled.end() ? fmt::format("{} row(s)", found->rows.size())
                                : info.built          ? "missing"
                                                      : "not built";
      fmt::print("{:<30} {:<10} {}{}\n", info.name, state, found != filled.end() ? "from " : "needs ", info.source);
    }
    return kExitOk;
  }
  if (!flags.out.empty()) std::filesystem::create_directories(flags.out);
  int written = 0;
  for (const report::Table& table : filled) {
    if (!flags.only.empty() && std::find(flags.only.begin(), flags.only.end(), table.name) == flags.only.end())
      continue;
    const std::string text = render(table, flags.format);
    if (flags.out.empty()) {
      std::cout << (written > 0 ? "\n" : "") << text;
    } else {
      const auto path = std::filesystem::path(flags.out) / (table.name + extension(flags.format));
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
      "CI and a missing number printed as `not run`; --list says which this database fills and what the others need.");
  command->add_option("db", flags->db, "Results database")->required();
  command->add_option("--format", flags->format, "md (default), latex, csv or html")
      ->check(CLI::IsMember({"md", "latex", "csv", "html"}));
  command->add_option("--out", flags->out, "Folder for one file per table (default: print them)");
  command->add_option("--only", flags->only, "Only these tables (by name)");
  command->add_flag("--list", flags->list, "List every table: its rows here, or the cells it needs");
  add_verdict_options(command, flags->verdicts);
  command->callback([flags, &context] { context.exit_code = run_tables(*flags); });
}

}  // namespace kvsafe::cli
