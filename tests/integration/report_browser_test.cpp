// `kvsafe report` end to end on the golden database (tests/report/golden_db.h): the real
// binary writes the page, and a real browser (headless Chromium, Debian's `chromium`) loads it.
// The test checks the DOM the browser built (every table and figure there, the provenance, no
// script error on the console); when it fails, a screenshot of the page is kept at
// build/Testing/Temporary/report_browser.png for the CI artifacts.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include "common/subprocess.h"
#include "db/store.h"
#include "tests/integration/run_harness.h"
#include "tests/report/golden_db.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe {
namespace {

using kvsafe::testing::TempDir;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) != "" && std::string(ci) != "false" && std::string(ci) != "0";
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

TEST(ReportBrowser, ThePageLoadsInChromiumWithEveryTableAndFigure) {
  TempDir dir("report_browser");
  const std::filesystem::path db = dir.path() / "golden.db";
  report::golden::write_golden_database(db);
  {
    // A failed cell whose model name and error are markup: the page must show them as text.
    auto store = db::Store::open(db);
    const std::int64_t experiment = store->register_experiment(
        {.name = "hostile", .grid_path = "h.yaml", .grid_sha256 = "0", .grid_text = "name: hostile"});
    db::CellRecord cell =
        report::golden::golden_cell("<img src=x onerror=alert(1)>", {"none", 16, 16}, "perplexity", "wikitext", 1);
    store->register_cells(experiment, {cell}, 1);
    const db::ShardKey key{.cell_id = cell.id, .begin = 0, .end = 1};
    ASSERT_TRUE(store->claim_shard(key, "test"));
    store->fail_shard(key, "<script>alert('error')</script>", /*max_attempts=*/1);
  }
  const std::filesystem::path out = dir.path() / "my report";  // a space: paths travel unquoted
  const ProcessResult written = run_process({testing::kvsafe_binary(), "report", db.string(), "--out", out.string(),
                                             "--min-baseline-refusals", "5", "--title", "Golden <report> & co"});
  ASSERT_EQ(written.exit_code, 0) << written.output;
  EXPECT_NE(written.output.find("8 table(s), 3 figure(s)"), std::string::npos) << written.output;
  for (const char* name : {"phase_transition_flip", "phase_transition_refusal", "perplexity_vs_flip"}) {
    EXPECT_TRUE(std::filesystem::exists(out / "figures" / (std::string(name) + ".svg"))) << name;
    if (!find_on_path("rsvg-convert").empty()) {
      EXPECT_GT(std::filesystem::file_size(out / "figures" / (std::string(name) + ".png")), 1000U) << name;
    }
  }
  for (const char* ext : {".md", ".tex", ".csv"}) {
    EXPECT_TRUE(std::filesystem::exists(out / "tables" / (std::string("advbench_main") + ext))) << ext;
  }

  const std::string chromium = find_on_path("chromium");
  if (chromium.empty()) {
    if (in_ci()) FAIL() << "chromium is not installed (scripts/setup installs it)";
    GTEST_SKIP() << "chromium not installed (Debian chromium): the page was written but not loaded";
  }
  const std::string url = "file://" + (out / "index.html").string();
  // NOTE: --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  const ProcessResult dom = run_process(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--dump-dom", url},
      {.timeout_s = 120, .merge_stderr = false});
  bool ok = dom.exit_code == 0;
  EXPECT_EQ(dom.exit_code, 0) << dom.output;
  // The DOM as the browser parsed it: 8 filled tables + 6 provenance tables (experiments, runs,
  // models, KV specs, judges, failures), 3 inline SVG figures.
  const std::size_t tables = occurrences(dom.output, "<table");
  const std::size_t figures = occurrences(dom.output, "data-figure=\"");
  const std::size_t sections = occurrences(dom.output, "<section id=\"tab-");
  ok = ok && tables == 14 && figures == 3 && sections == 8;
  EXPECT_EQ(tables, 14U);
  EXPECT_EQ(sections, 8U);
  EXPECT_EQ(figures, 3U);
  EXPECT_NE(dom.output.find("<title>Golden &lt;report&gt; &amp; co</title>"), std::string::npos);
  EXPECT_NE(dom.output.find("id=\"provenance\""), std::string::npos);
  EXPECT_NE(dom.output.find("keyword:default:substring"), std::string::npos);  // the judge, in the provenance
  // The hostile strings are text in the failures table, never elements.
  EXPECT_NE(dom.output.find("&lt;script&gt;alert('error')&lt;/script&gt;"), std::string::npos) << dom.output;
  EXPECT_NE(dom.output.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  EXPECT_EQ(dom.output.find("<img"), std::string::npos);
  EXPECT_EQ(dom.output.find("<script"), std::string::npos);
  // No console message at all: the page has no script, so any is an error.
  const bool console = std::regex_search(dom.error, std::regex("CONSOLE|Uncaught"));
  ok = ok && !console;
  EXPECT_FALSE(console) << dom.error;
  if (!ok) {
    const auto shot = std::filesystem::path(KVSAFE_BINARY_DIR) / "Testing" / "Temporary" / "report_browser.png";
    std::filesystem::create_directories(shot.parent_path());
    run_process({chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,4000",
                 "--screenshot=" + shot.string(), url},
                {.timeout_s = 120, .merge_stderr = true});
    ADD_FAILURE() << "screenshot of the page: " << shot;
  }
}

}  // namespace
}  // namespace kvsafe
