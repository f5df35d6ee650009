// `kvsafe report DB --out DIR`: the paper's tables and figures from a results database, and one
// self-contained page over them (report/html_report.h). Writes
//   DIR/index.html           tables, inline SVG figures, provenance; readable offline
//   DIR/figures/NAME.svg     each figure (and NAME.png when rsvg-convert is installed)
//   DIR/tables/NAME.{md,tex,csv}
// and prints what it wrote. Nothing in DIR but these files is touched.

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/verdict_options.h"
#include "common/error.h"
#include "common/subprocess.h"
#include "common/version.h"
#include "report/database_tables.h"
#include "report/diagnosis_report.h"
#include "report/figures.h"
#include "report/html_report.h"
#include "report/paper_tables.h"
#include "report/run_summary.h"

namespace kvsafe::cli {
namespace {

struct ReportFlags {
  std::string db;
  std::string out;
  std::string title;
  VerdictFlags verdicts;
  bool png = true;  // PNG copies of the figures through rsvg-convert, when it is installed
};

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  file << text;
  KVSAFE_CHECK(file.good(), path.string(), ": could not be written");
}

int run_report(const ReportFlags& flags) {
  if (!std::filesystem::exists(flags.db)) {
    fmt::print(stderr, "kvsafe report: {}: no such database\n", flags.db);
    return kExitFailure;
  }
  std::optional<std::string> judge;
  if (const auto exit = choose_judge_or_exit("report", flags.db, flags.verdicts, judge)) return *exit;
  const std::int64_t min_baseline_refusals = flags.verdicts.min_baseline_refusals;
  const report::RunSummaryOptions summary_options{.min_baseline_refusals = min_baseline_refusals, .judge = judge};
  const report::RunSummary summary = report::summarize_run(flags.db, summary_options);
  report::DiagnosisReportOptions diagnosis_options;
  diagnosis_options.min_baseline_refusals = min_baseline_refusals;
  diagnosis_options.judge = judge;
  const report::DiagnosisReport diagnosis = report::read_diagnosis_report(flags.db, diagnosis_options);

  report::HtmlReportInput page;
  page.title =
      flags.title.empty() ? "kvsafe report: " + std::filesystem::path(flags.db).filename().string() : flags.title;
  page.database = flags.db;
  const BuildInfo& build = build_info();
  page.generator = fmt::format("kvsafe {} (git {})", build.version, build.git_commit);
  page.conclusion = report::summary_conclusion(summary, summary_options);
  page.figures = report::paper_figures(summary, diagnosis);
  page.tables = report::database_tables(flags.db, {.min_baseline_refusals = min_baseline_refusals, .judge = judge});
  for (const report::PaperTableInfo& info : report::paper_tables()) {
    const bool filled = std::any_of(page.tables.begin(), page.tables.end(),
                                    [&](const report::Table& t) { return t.name == info.name; });
    if (!filled) page.missing.push_back({std::string(info.name), std::string(info.source)});
  }
  page.provenance = report::read_provenance(flags.db);

  const std::filesystem::path out(flags.out);
  std::filesystem::create_directories(out / "figures");
  std::filesystem::create_directories(out / "tables");
  const std::string rsvg = flags.png ? find_on_path("rsvg-convert") : "";
  int pngs = 0;
  int drawn = 0;
  for (const report::ReportFigure& figure : page.figures) {
    if (figure.svg.empty()) continue;  // nothing defined to draw: the page says why
    ++drawn;
    const std::filesystem::path svg = out / "figures" / (figure.name + ".svg");
    write_file(svg, figure.svg);
    if (rsvg.empty()) continue;
    const std::filesystem::path png = out / "figures" / (figure.name + ".png");
    const ProcessResult converted = run_process({rsvg, "--format=png", "--zoom=2", "-o", png.string(), svg.string()});
    if (converted.exit_code != 0) {
      fmt::print(stderr, "kvsafe report: rsvg-convert could not render {} (exit {}): {}\n", svg.string(),
                 converted.exit_code, converted.output);
      return kExitFailure;
    }
    ++pngs;
  }
  for (const report::Table& table : page.tables) {
    write_file(out / "tables" / (table.name + ".md"), report::render_markdown(table));
    write_file(out / "tables" / (table.name + ".tex"), report::render_latex(table));
    write_file(out / "tables" / (table.name + ".csv"), report::render_csv(table));
  }
  write_file(out / "index.html", report::render_html_report(page));
  fmt::print("wrote {}: {} table(s), {} figure(s){}\n", (out / "index.html").string(), page.tables.size(), drawn,
             flags.png && rsvg.empty() ? " (no PNG copies: rsvg-convert is not installed; Debian librsvg2-bin)"
                                       : fmt::format(" ({} PNG)", pngs));
  fmt::print("  tables in {}, figures in {}\n", (out / "tables").string(), (out / "figures").string());
  return kExitOk;
}

}  // namespace

void register_report(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<ReportFlags>();
  auto* command = app.add_subcommand(
      "report",
      "One self-contained page (index.html) over a results database: the tables it fills, the paper's figures as\n"
      "inline SVG, and the provenance (models and their sha256, KV settings, judges, runs, failures); the tables\n"
      "and figures also as files beside it (tables/*.md|tex|csv, figures/*.svg, and *.png with rsvg-convert).");
  command->add_option("db", flags->db, "Results database")->required();
  command->add_option("--out", flags->out, "Folder to write into (created)")->required();
  command->add_option("--title", flags->title, "The page's title (default: kvsafe report: DB's name)");
  add_verdict_options(command, flags->verdicts);
  command->add_flag("!--no-png", flags->png, "Do not render PNG copies of the figures");
  command->callback([flags, &context] { context.exit_code = run_report(*flags); });
}

}  // namespace kvsafe::cli
