// Golden files: every table the golden database (golden_db.h) fills, in every format, and every
// figure it draws, byte for byte against tests/report/fixtures/ (generated from the synthetic golden database). A
// change to a golden file is a reviewed change: run with KVSAFE_UPDATE_GOLDEN=1 to rewrite them, then read the diff.
// Also: the LaTeX tables compile with pdflatex (Debian texlive-latex-base + -recommended).

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/subprocess.h"
#include "report/database_tables.h"
#include "report/diagnosis_report.h"
#include "report/figures.h"
#include "report/run_summary.h"
#include "report/table.h"
#include "tests/report/golden_db.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::report {
namespace {

using kvsafe::testing::TempDir;

const std::filesystem::path kGoldenDir = std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests" / "report" / "fixtures";
constexpr std::int64_t kMinBaselineRefusals = 5;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) != "" && std::string(ci) != "false" && std::string(ci) != "0";
}

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The first line where two texts differ, for a failure message a reviewer can act on.
std::string first_difference(const std::string& expected, const std::string& actual) {
  std::istringstream e(expected), a(actual);
  std::string le, la;
  for (int line = 1;; ++line) {
    const bool more_e = static_cast<bool>(std::getline(e, le));
    const bool more_a = static_cast<bool>(std::getline(a, la));
    if (!more_e && !more_a) return "texts differ only in their final newline";
    if (le != la || more_e != more_a) {
      return "line " + std::to_string(line) + ":\n  golden: " + (more_e ? le : "<end>") +
             "\n  actual: " + (more_a ? la : "<end>");
    }
  }
}

void expect_golden(const std::string& name, const std::string& actual) {
  const std::filesystem::path path = kGoldenDir / name;
  const char* update = std::getenv("KVSAFE_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing: KVSAFE_UPDATE_GOLDEN=1 writes it";
  const std::string expected = slurp(path);
  EXPECT_EQ(expected, actual) << name << " differs from its golden file, " << first_difference(expected, actual)
                              << "\n(KVSAFE_UPDATE_GOLDEN=1 rewrites it; review the diff before committing)";
}

class GoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("golden");
    golden::write_golden_database(dir_->path() / "golden.db");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::filesystem::path db() { return dir_->path() / "golden.db"; }
  static std::vector<Table> tables() {
    return database_tables(db(), {.min_baseline_refusals = kMinBaselineRefusals, .judge = {}});
  }

  static TempDir* dir_;
};
TempDir* GoldenTest::dir_ = nullptr;

TEST_F(GoldenTest, TheDatabaseFillsTheSummaryTables) {
  std::vector<std::string> names;
  for (const Table& table : tables()) names.push_back(table.name);
  EXPECT_EQ(names, (std::vector<std::string>{"custom_all_models", "advbench_main", "multi_model_ppl", "std_metrics",
                                             "mse_phase", "phase_thresholds", "cross_suite_compare", "over_refusal"}));
}

TEST_F(GoldenTest, EveryTableInEveryFormat) {
  std::string markdown, latex, html, csv;
  for (const Table& table : tables()) {
    markdown += render_markdown(table) + "\n";
    latex += render_latex(table) + "\n";
    html += render_html(table) + "\n";
    csv += "==> " + table.name + ".csv <==\n" + render_csv(table);
  }
  expect_golden("tables.md", markdown);
  expect_golden("tables.tex", latex);
  expect_golden("tables.html", html);
  expect_golden("tables.csv", csv);
}

TEST_F(GoldenTest, EveryFigure) {
  const RunSummary summary = summarize_run(db(), {.min_baseline_refusals = kMinBaselineRefusals, .judge = {}});
  const std::vector<ReportFigure> figures = paper_figures(summary, read_diagnosis_report(db()));
  std::vector<std::string> names;
  for (const ReportFigure& figure : figures) {
    names.push_back(figure.name);
    ASSERT_FALSE(figure.svg.empty()) << figure.name << ": " << figure.caption;
    expect_golden("figures/" + figure.name + ".svg", figure.svg);
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"phase_transition_flip", "phase_transition_refusal", "perplexity_vs_flip"}));
}

TEST_F(GoldenTest, LatexCompilesWithPdflatex) {
  const std::string pdflatex = find_on_path("pdflatex");
  if (pdflatex.empty()) {
    if (in_ci()) FAIL() << "pdflatex is not installed (scripts/setup installs texlive-latex-base)";
    GTEST_SKIP() << "pdflatex not installed (Debian texlive-latex-base, texlive-latex-recommended)";
  }
  TempDir latex_dir("golden_latex");
  std::string document =
      "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n\\begin{document}\n\\small\n";
  for (const Table& table : tables()) {
    std::ofstream(latex_dir.path() / (table.name + ".tex")) << render_latex(table);
    document += "\\input{" + (latex_dir.path() / table.name).string() + "}\n";  // pdflatex runs in the test's folder
  }
  document += "\\end{document}\n";
  std::ofstream(latex_dir.path() / "tables.tex") << document;
  const ProcessResult result = run_process({pdflatex, "-interaction=nonstopmode", "-halt-on-error", "-output-directory",
                                            latex_dir.path().string(), (latex_dir.path() / "tables.tex").string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(std::filesystem::exists(latex_dir.path() / "tables.pdf")) << result.output;
}

}  // namespace
}  // namespace kvsafe::report
