#include "report/html_report.h"

#include <fmt/format.h>

#include "common/error.h"
#include "db/readonly_query.h"
#include "report/verdict_sql.h"

namespace kvsafe::report {
namespace {

std::string text(const db::QueryValue& value) {
  return db::query_text(value);
}

bool has_column(const std::filesystem::path& db, const std::string& table, const std::string& column) {
  const db::QueryResult probe = db::run_readonly_query(db, "SELECT * FROM " + table + " LIMIT 0");
  for (const auto& name : probe.columns) {
    if (name == column) return true;
  }
  return false;
}

void check_anchor(const std::string& name, const char* what) {
  KVSAFE_CHECK(
      !name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
                           std::string::npos,
      "html report: ", what, " name \"", name, "\" must be [A-Za-z0-9_-]+");
}

// A plain two-dimensional table of text for the provenance (no rates, no numbers to align).
std::string simple_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string out = "<table class=\"provenance\"><thead><tr>";
  for (const auto& h : header) out += "<th>" + escape_html(h) + "</th>";
  out += "</tr></thead><tbody>\n";
  for (const auto& row : rows) {
    out += "<tr>";
    for (const auto& cell : row) out += "<td>" + escape_html(cell) + "</td>";
    out += "</tr>\n";
  }
  return out + "</tbody></table>\n";
}

// NOTE: the style is inline so the page stays one file; print-friendly, no web fonts.
constexpr const char* kStyle = R"css(
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2.5rem; }
p.meta { color: #555; margin-top: 0; }
p.conclusion { background: #f3f6fa; border-left: 4px solid #0072b2; padding: 0.6rem 0.9rem; }
nav ul { columns: 3; padding-left: 1.2rem; }
figure { margin: 1.5rem 0; }
figcaption { color: #444; font-size: 0.9rem; }
svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 0.8rem 0 1.6rem; font-size: 0.85rem; }
caption { caption-side: top; text-align: left; font-size: 0.9rem; color: #333; padding-bottom: 0.3rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; vertical-align: top; text-align: left; }
thead th { border-bottom: 2px solid #888; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.wrap { overflow-x: auto; }
code { font-size: 0.85rem; word-break: break-all; }
)css";

}  // namespace

Provenance read_provenance(const std::filesystem::path& db) {
  Provenance p;
  for (const auto& r :
       db::run_readonly_query(db, "SELECT name, grid_path, grid_sha256, created_at FROM experiments ORDER BY id")
           .rows) {
    p.experiments.push_back({text(r[0]), text(r[1]), text(r[2]), text(r[3])});
  }
  for (const auto& r : db::run_readonly_query(
                           db,
                           "SELECT r.id, coalesce(e.name, ''), r.started_at, coalesce(r.ended_at, ''), r.command_line, "
                           "r.hosts, r.ranks, r.git_commit, r.status, r.slurm_job_id, coalesce(r.exit_code, '') FROM "
                           "runs r LEFT JOIN experiments e ON e.id = r.experiment_id ORDER BY r.id")
                           .rows) {
    p.runs.push_back({.id = db::query_int64(r[0]),
                      .experiment = text(r[1]),
                      .started_at = text(r[2]),
                      .ended_at = text(r[3]),
                      .command_line = text(r[4]),
                      .hosts = text(r[5]),
                      .git_commit = text(r[7]),
                      .status = text(r[8]),
                      .slurm_job_id = text(r[9]),
                      .ranks = db::query_int64(r[6]),
                      .exit_code = text(r[10])});
  }
  const std::string chat_template = has_column(db, "models", "chat_template") ? "chat_template" : "''";
  for (const auto& r : db::run_readonly_query(db, "SELECT name, path, sha256, architecture, n_params, " +
                                                      chat_template + " FROM models ORDER BY name")
                           .rows) {
    p.models.push_back({.name = text(r[0]),
                        .path = text(r[1]),
                        .sha256 = text(r[2]),
                        .architecture = text(r[3]),
                        .chat_template = text(r[5]),
                        .n_params = db::query_int64(r[4])});
  }
  for (const auto& r :
       db::run_readonly_query(
           db, "SELECT label, effective_bits, canonical_json FROM kv_specs ORDER BY effective_bits DESC, label")
           .rows) {
    p.kv_specs.push_back(
        {.label = text(r[0]), .canonical_json = text(r[2]), .effective_bits = db::query_double(r[1]).value_or(16)});
  }
  for (const JudgeVerdictCount& judge : judges_with_verdicts(db)) {
    p.judges.push_back({judge.label, judge.run_verdicts, judge.rejudged_verdicts});
  }
  for (const auto& r : db::run_readonly_query(db,
                                              "SELECT c.id, c.model, c.benchmark, k.label, coalesce(c.error, ''), "
                                              "c.attempts FROM cells c JOIN kv_specs k ON k.hash = c.kv_hash WHERE "
                                              "c.status = 'failed' ORDER BY c.model, c.benchmark, k.label")
                           .rows) {
    p.failures.push_back({.cell_id = text(r[0]),
                          .model = text(r[1]),
                          .benchmark = text(r[2]),
                          .kv_label = text(r[3]),
                          .error = text(r[4]),
                          .attempts = db::query_int64(r[5])});
  }
  const db::QueryResult counts = db::run_readonly_query(
      db, "SELECT count(*), coalesce(sum(status = 'done'), 0), (SELECT count(*) FROM generations) FROM cells");
  p.cells = db::query_int64(counts.rows.at(0)[0]);
  p.cells_done = db::query_int64(counts.rows.at(0)[1]);
  p.generations = db::query_int64(counts.rows.at(0)[2]);
  return p;
}

std::string render_html_report(const HtmlReportInput& input) {
  for (const ReportFigure& figure : input.figures) check_anchor(figure.name, "figure");
  for (const Table& table : input.tables) check_table(table);
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + escape_html(input.title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  out += "<header>\n<h1>" + escape_html(input.title) + "</h1>\n";
  const Provenance& p = input.provenance;
  out += fmt::format("<p class=\"meta\">Database <code>{}</code>: {} cells ({} done), {} answers. Written by {}.</p>\n",
                     escape_html(input.database), p.cells, p.cells_done, p.generations, escape_html(input.generator));
  if (!input.conclusion.empty()) out += "<p class=\"conclusion\">" + escape_html(input.conclusion) + "</p>\n";
  out += "<nav><ul>\n";
  for (const ReportFigure& figure : input.figures) {
    out += fmt::format("<li><a href=\"#fig-{0}\">figure: {0}</a></li>\n", figure.name);
  }
  for (const Table& table : input.tables)
    out += fmt::format("<li><a href=\"#tab-{0}\">table: {0}</a></li>\n", table.name);
  out += "<li><a href=\"#provenance\">provenance</a></li>\n</ul></nav>\n</header>\n";

  out += "<section id=\"figures\">\n<h2>Figures</h2>\n";
  if (input.figures.empty()) out += "<p>This database fills no figure yet.</p>\n";
  for (const ReportFigure& figure : input.figures) {
    if (figure.svg.empty()) {
      out += fmt::format("<p id=\"fig-{}\" class=\"not-drawn\"><strong>{}</strong>: {}</p>\n", figure.name, figure.name,
                         escape_html(figure.caption));
      continue;
    }
    out += fmt::format("<figure id=\"fig-{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>\n", figure.name, figure.svg,
                       escape_html(figure.caption));
  }
  out += "</section>\n<section id=\"tables\">\n<h2>Tables</h2>\n";
  if (input.tables.empty()) out += "<p>This database fills no table yet.</p>\n";
  for (const Table& table : input.tables) {
    out += fmt::format("<section id=\"tab-{}\" class=\"wrap\">\n", table.name) + render_html(table) + "</section>\n";
  }
  if (!input.missing.empty()) {
    out += "<h3>Not filled by this database</h3>\n<ul class=\"missing\">\n";
    for (const MissingTable& m : input.missing) {
      out += "<li><code>" + escape_html(m.name) + "</code>: needs " + escape_html(m.needs) + "</li>\n";
    }
    out += "</ul>\n";
  }
  out += "</section>\n<section id=\"provenance\">\n<h2>Provenance</h2>\n";
  out += "<h3>Experiments</h3>\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : p.experiments) rows.push_back({e.name, e.grid_path, e.grid_sha256, e.created_at});
  out += simple_table({"Name", "Grid", "Grid sha256", "Registered"}, rows);
  out += "<h3>Runs</h3>\n";
  rows.clear();
  for (const auto& r : p.runs) {
    rows.push_back({std::to_string(r.id), r.experiment, r.started_at, r.ended_at, r.status, r.exit_code,
                    std::to_string(r.ranks), r.hosts, r.slurm_job_id, r.git_commit, r.command_line});
  }
  out += simple_table({"Run", "Experiment", "Started", "Ended", "Status", "Exit", "Ranks", "Hosts", "SLURM job",
                       "Git commit", "Command"},
                      rows);
  out += "<h3>Models</h3>\n";
  rows.clear();
  for (const auto& m : p.models) {
    rows.push_back({m.name, m.architecture, std::to_string(m.n_params), m.sha256, m.chat_template, m.path});
  }
  out += simple_table({"Model", "Architecture", "Parameters", "sha256", "Chat template", "Path"}, rows);
  out += "<h3>KV cache settings</h3>\n";
  rows.clear();
  for (const auto& k : p.kv_specs) rows.push_back({k.label, fmt::format("{:.3f}", k.effective_bits), k.canonical_json});
  out += simple_table({"Label", "Bits per element", "Spec"}, rows);
  out += "<h3>Judges</h3>\n";
  rows.clear();
  for (const auto& j : p.judges) {
    rows.push_back({j.label, std::to_string(j.run_verdicts), std::to_string(j.rejudged_verdicts)});
  }
  out += simple_table({"Judge", "Run verdicts", "Re-judged (kvsafe judge)"}, rows);
  out += fmt::format("<h3>Failures ({})</h3>\n", p.failures.size());
  if (p.failures.empty()) {
    out += "<p>No cell failed.</p>\n";
  } else {
    rows.clear();
    for (const auto& f : p.failures) {
      rows.push_back({f.model, f.benchmark, f.kv_label, std::to_string(f.attempts), f.error, f.cell_id});
    }
    out += simple_table({"Model", "Benchmark", "KV", "Attempts", "Error", "Cell"}, rows);
  }
  out += "</section>\n</body>\n</html>\n";
  return out;
}

}  // namespace kvsafe::report
