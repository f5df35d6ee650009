// The SVG chart writer, checked on its output: coordinates parsed back out of the SVG (edges,
// reversal, log2 spacing, bar heights), tooltips, escaping, NaN handling, errors, byte
// stability, tag balance, and, when installed, rendering by rsvg-convert (an independent
// SVG parser).

#include "report/svg_chart.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"

namespace kvsafe::report {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// EXPECT_TRUE(has_text(text, needle)) / EXPECT_FALSE(..): the failure message shows the needle.
::testing::AssertionResult has_text(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess() << "contains \"" << needle << "\"";
  return ::testing::AssertionFailure() << "lacks \"" << needle << "\"";
}

// The values of attribute `name` on every `<tag ` element, in document order.
std::vector<double> attribute_values(const std::string& svg, const std::string& tag, const std::string& name) {
  std::vector<double> out;
  for (std::size_t at = svg.find("<" + tag + " "); at != std::string::npos; at = svg.find("<" + tag + " ", at + 1)) {
    const std::size_t end = svg.find('>', at);
    const std::size_t key = svg.find(" " + name + "=\"", at);
    if (key == std::string::npos || key > end) continue;
    out.push_back(std::stod(svg.substr(key + name.size() + 3)));
  }
  return out;
}

struct PlotBox {
  double left = 0, top = 0, right = 0, bottom = 0;
};

PlotBox plot_box(const std::string& svg) {
  const std::size_t at = svg.find("<rect class=\"plot\"");
  EXPECT_NE(at, std::string::npos);
  const std::string rect = svg.substr(at, svg.find('>', at) - at);
  const auto get = [&](const std::string& name) {
    return std::stod(rect.substr(rect.find(" " + name + "=\"") + name.size() + 3));
  };
  return {.left = get("x"), .top = get("y"), .right = get("x") + get("width"), .bottom = get("y") + get("height")};
}

// Every opened tag is closed in order; self-closing tags count as closed. Returns "" or the
// first problem.
std::string tag_balance(const std::string& svg) {
  std::vector<std::string> open;
  for (std::size_t at = svg.find('<'); at != std::string::npos; at = svg.find('<', at + 1)) {
    const std::size_t end = svg.find('>', at);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(at);
    const std::string tag = svg.substr(at + 1, end - at - 1);
    if (tag.find('<') != std::string::npos) return "'<' inside a tag at " + std::to_string(at);
    if (tag.starts_with('/')) {
      if (open.empty() || open.back() != tag.substr(1)) return "unexpected </" + tag.substr(1) + ">";
      open.pop_back();
    } else if (!tag.ends_with('/')) {
      open.push_back(tag.substr(0, tag.find_first_of(" \n")));
    }
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  return "";
}

// Every '&' starts one of the five entities escape_html writes.
bool entities_ok(const std::string& svg) {
  for (std::size_t at = svg.find('&'); at != std::string::npos; at = svg.find('&', at + 1)) {
    const std::string rest = svg.substr(at, 6);
    if (!rest.starts_with("&amp;") && !rest.starts_with("&lt;") && !rest.starts_with("&gt;") &&
        !rest.starts_with("&quot;") && !rest.starts_with("&#39;"))
      return false;
  }
  return true;
}

int count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

LineChart flip_chart() {
  return LineChart{
      .name = "flip_vs_bits",
      .title = "Flip rate vs bits",
      .x_label = "bits",
      .y_label = "flip rate",
      .series = {{.name = "int4",
                  .points = {{.x = 8, .y = 0.05, .low = 0.01, .high = 0.12},
                             {.x = 2, .y = 0.375, .low = 0.211, .high = 0.573},
                             {.x = 4, .y = 0.2, .low = 0.1, .high = 0.3}}},
                 {.name = "fp8", .points = {{.x = 2, .y = 0.3}, {.x = 4, .y = 0.1}, {.x = 8, .y = 0.02}}}},
      .y_percent = true,
      .y_min = 0,
      .y_max = 1,
      .reference_lines = {{.y = 0.05, .label = "safe < 5%"}},
  };
}

BarChart bar_chart() {
  return BarChart{
      .name = "refusal",
      .title = "Refusal by quantizer",
      .x_label = "benchmark",
      .y_label = "refusal",
      .series_names = {"fp16", "int4"},
      .groups = {{.category = "advbench",
                  .values = {{.y = 0.9, .low = 0.8, .high = 0.95}, {.y = 0.125, .low = 0.05, .high = 0.25}}},
                 {.category = "harmbench", .values = {{.y = 0.5}, {.y = kNaN}}}},
      .y_percent = true,
      .y_min = 0,
      .y_max = 1};
}

Heatmap heatmap() {
  return Heatmap{.name = "layers",
                 .title = "Flip by layer",
                 .x_label = "layer",
                 .y_label = "quantizer",
                 .rows = {"int4", "int2"},
                 .columns = {"L0", "L1", "L2"},
                 .values = {{0, 0.375, 1}, {0.5, kNaN, 2}}};
}

TEST(SvgChart, DocumentContract) {
  for (const std::string& svg : {render_svg(flip_chart()), render_svg(bar_chart()), render_svg(heatmap())}) {
    EXPECT_TRUE(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" ")) << svg.substr(0, 80);
    EXPECT_TRUE(svg.ends_with("</svg>\n"));
    EXPECT_TRUE(has_text(svg, " role=\"img\""));
    EXPECT_TRUE(has_text(svg, " viewBox=\"0 0 640 "));
    EXPECT_TRUE(has_text(svg, " font-family=\"sans-serif\""));
    EXPECT_TRUE(has_text(svg, "<desc>"));
    EXPECT_FALSE(has_text(svg, "<script"));
    EXPECT_FALSE(has_text(svg, "href"));  // no external resource
    EXPECT_FALSE(has_text(svg, "-0.0"));
    EXPECT_EQ(tag_balance(svg), "");
    EXPECT_TRUE(entities_ok(svg));
  }
  const std::string line = render_svg(flip_chart());
  EXPECT_TRUE(has_text(line, " id=\"flip_vs_bits\" data-figure=\"flip_vs_bits\""));
  EXPECT_TRUE(has_text(line, "<title>Flip rate vs bits</title>\n<desc>"));
}

TEST(SvgChart, Deterministic) {
  EXPECT_EQ(render_svg(flip_chart()), render_svg(flip_chart()));
  EXPECT_EQ(render_svg(bar_chart()), render_svg(bar_chart()));
  EXPECT_EQ(render_svg(heatmap()), render_svg(heatmap()));
}

TEST(SvgChart, TagBalanceCheckerCatchesErrors) {
  EXPECT_EQ(tag_balance("<a><b/><c>x</c></a>"), "");
  EXPECT_NE(tag_balance("<a><b></a>"), "");
  EXPECT_NE(tag_balance("<a>"), "");
  EXPECT_NE(tag_balance("<a x=\"<\"></a>"), "");
}

TEST(SvgLineChart, MinXOnLeftEdgeMaxOnRight) {
  LineChart chart = flip_chart();
  chart.series.resize(1);  // series 0 draws circles; no legend circles either
  const std::string svg = render_svg(chart);
  const PlotBox box = plot_box(svg);
  const std::vector<double> cx = attribute_values(svg, "circle", "cx");
  ASSERT_EQ(cx.size(), 3u);
  // Drawn in x order (2, 4, 8) whatever the input order.
  EXPECT_DOUBLE_EQ(cx[0], box.left);
  EXPECT_NEAR(cx[1], box.left + (box.right - box.left) / 3, 0.05);
  EXPECT_DOUBLE_EQ(cx[2], box.right);

  chart.x_reversed = true;
  const std::string reversed = render_svg(chart);
  const std::vector<double> rx = attribute_values(reversed, "circle", "cx");
  ASSERT_EQ(rx.size(), 3u);
  EXPECT_DOUBLE_EQ(rx[0], box.right);
  EXPECT_DOUBLE_EQ(rx[2], box.left);
}

TEST(SvgLineChart, YMapsFractionsOntoThePlot) {
  LineChart chart = flip_chart();
  chart.series.resize(1);
  const std::string svg = render_svg(chart);
  const PlotBox box = plot_box(svg);
  const std::vector<double> cy = attribute_values(svg, "circle", "cy");
  ASSERT_EQ(cy.size(), 3u);
  const double height = box.bottom - box.top;
  EXPECT_NEAR(cy[0], box.bottom - 0.375 * height, 0.05);  // x = 2
  EXPECT_NEAR(cy[2], box.bottom - 0.05 * height, 0.05);   // x = 8
}

TEST(SvgLineChart, LogAxisSpacesPowersOfTwoEvenly) {
  LineChart chart{.name = "log",
                  .series = {{.name = "a", .points = {{.x = 2, .y = 1}, {.x = 4, .y = 2}, {.x = 16, .y = 3}}}},
                  .x_log = true};
  const std::string svg = render_svg(chart);
  const PlotBox box = plot_box(svg);
  const std::vector<double> cx = attribute_values(svg, "circle", "cx");
  ASSERT_EQ(cx.size(), 3u);
  EXPECT_DOUBLE_EQ(cx[0], box.left);
  EXPECT_NEAR(cx[1], box.left + (box.right - box.left) / 3, 0.05);  // log2: 1, 2, 4
  EXPECT_DOUBLE_EQ(cx[2], box.right);
  // Distinct x values are the ticks.
  EXPECT_TRUE(has_text(svg, ">2</text>"));
  EXPECT_TRUE(has_text(svg, ">4</text>"));
  EXPECT_TRUE(has_text(svg, ">16</text>"));
  EXPECT_FALSE(has_text(svg, ">8</text>"));
}

TEST(SvgLineChart, PercentTicks) {
  const std::string svg = render_svg(flip_chart());
  EXPECT_TRUE(has_text(svg, ">0%</text>"));
  EXPECT_TRUE(has_text(svg, ">50%</text>"));
  EXPECT_TRUE(has_text(svg, ">100%</text>"));
  EXPECT_FALSE(has_text(svg, ">0.5</text>"));
}

TEST(SvgLineChart, DefaultYRangeCoversDataAndCi) {
  LineChart chart{.name = "auto",
                  .series = {{.name = "a",
                              .points = {{.x = 1, .y = 1.07, .low = 0.98, .high = 1.2},
                                         {.x = 2, .y = 1.3, .low = 1.1, .high = 1.4}}}}};
  const std::string svg = render_svg(chart);
  const PlotBox box = plot_box(svg);
  for (const double y : attribute_values(svg, "circle", "cy")) {
    EXPECT_GT(y, box.top);
    EXPECT_LT(y, box.bottom);
  }
  // The band's lowest point (0.98) is inside the plot too; the range does not start at 0.
  EXPECT_TRUE(has_text(svg, "<polygon "));
  EXPECT_FALSE(has_text(svg, ">0</text>"));
}

TEST(SvgLineChart, TooltipsCarryValueAndCi) {
  const std::string svg = render_svg(flip_chart());
  EXPECT_TRUE(has_text(svg, "<title>int4 (bits = 2): 37.5% [21.1, 57.3]</title>"));
  EXPECT_TRUE(has_text(svg, "<title>fp8 (bits = 8): 2.0%</title>"));
  LineChart raw{.name = "ppl",
                .series = {{.name = "q", .points = {{.x = 0.5, .y = 1.0712, .low = 1.02, .high = 1.1}}}}};
  EXPECT_TRUE(has_text(render_svg(raw), "<title>q (x = 0.5): 1.0712 [1.02, 1.1]</title>"));
}

TEST(SvgLineChart, EscapesText) {
  LineChart chart = flip_chart();
  chart.series[0].name = "a<b & \"c\"";
  chart.title = "it's <fine>";
  const std::string svg = render_svg(chart);
  EXPECT_TRUE(has_text(svg, "a&lt;b &amp; &quot;c&quot;"));
  EXPECT_TRUE(has_text(svg, "<title>it&#39;s &lt;fine&gt;</title>"));
  EXPECT_FALSE(has_text(svg, "a<b"));
  EXPECT_EQ(tag_balance(svg), "");
  EXPECT_TRUE(entities_ok(svg));
}

TEST(SvgLineChart, NanBreaksTheLineAndLeavesTheRange) {
  LineChart chart{.name = "gap",
                  .series = {{.name = "a",
                              .points = {{.x = 1, .y = 1},
                                         {.x = 2, .y = 2},
                                         {.x = 3, .y = kNaN},
                                         {.x = 4, .y = 3},
                                         {.x = 5, .y = 4},
                                         {.x = 9, .y = kNaN}}}}};
  const std::string svg = render_svg(chart);
  const std::size_t at = svg.find("<path d=\"M");
  ASSERT_NE(at, std::string::npos);
  const std::string d = svg.substr(at + 9, svg.find('"', at + 9) - at - 9);
  EXPECT_EQ(count(d, "M"), 2) << d;
  EXPECT_EQ(count(d, "L"), 2) << d;
  const std::vector<double> cx = attribute_values(svg, "circle", "cx");
  ASSERT_EQ(cx.size(), 4u);
  EXPECT_DOUBLE_EQ(cx.back(), plot_box(svg).right);  // x = 5, not the NaN point at 9
  EXPECT_FALSE(has_text(svg, ">9</text>"));
}

TEST(SvgLineChart, NoFinitePointStillDrawsAxes) {
  LineChart chart{.name = "empty", .title = "Empty", .series = {{.name = "a", .points = {{.x = 1, .y = kNaN}}}}};
  const std::string svg = render_svg(chart);
  EXPECT_TRUE(has_text(svg, ">no data</text>"));
  EXPECT_TRUE(has_text(svg, "<rect class=\"plot\""));
  EXPECT_FALSE(has_text(svg, "<circle"));
  EXPECT_EQ(tag_balance(svg), "");
  EXPECT_TRUE(has_text(render_svg(LineChart{.name = "none"}), ">no data</text>"));
}

TEST(SvgLineChart, ScatterDrawsWhiskersNotBandsOrLines) {
  LineChart chart = flip_chart();
  chart.lines = false;
  const std::string svg = render_svg(chart);
  EXPECT_FALSE(has_text(svg, "<polygon"));
  EXPECT_FALSE(has_text(svg, "stroke-linejoin"));
  EXPECT_EQ(count(svg, "stroke-width=\"1.2\"/>"), 3);  // one whisker per int4 point

  const std::string lines = render_svg(flip_chart());
  EXPECT_EQ(count(lines, "<polygon "), 1);  // one band over int4's three points
  EXPECT_EQ(count(lines, "stroke-linejoin"), 2);
}

TEST(SvgLineChart, SeriesDifferInColourAndShape) {
  LineChart chart{.name = "many"};
  for (int s = 0; s < 3; ++s)
    chart.series.push_back(
        {.name = "s" + std::to_string(s), .points = {{.x = 1, .y = static_cast<double>(s)}, {.x = 2, .y = s + 1.0}}});
  const std::string svg = render_svg(chart);
  EXPECT_TRUE(has_text(svg, "stroke=\"#0072B2\""));
  EXPECT_TRUE(has_text(svg, "stroke=\"#D55E00\""));
  EXPECT_TRUE(has_text(svg, "stroke=\"#009E73\""));
  EXPECT_EQ(count(svg, "<circle "), 3);       // two points + the legend key
  EXPECT_EQ(count(svg, " width=\"7\" "), 3);  // squares
  EXPECT_TRUE(has_text(svg, "<g class=\"legend\">"));
  EXPECT_TRUE(has_text(svg, ">s2</text>"));
}

TEST(SvgLineChart, ReferenceLineIsDashedAndLabelled) {
  const std::string svg = render_svg(flip_chart());
  EXPECT_TRUE(has_text(svg, "stroke-dasharray=\"6 4\""));
  EXPECT_TRUE(has_text(svg, ">safe &lt; 5%</text>"));
}

TEST(SvgBarChart, BarsRiseFromZeroWithWhiskers) {
  const std::string svg = render_svg(bar_chart());
  const PlotBox box = plot_box(svg);
  EXPECT_TRUE(has_text(svg, "<title>int4, advbench: 12.5% [5.0, 25.0]</title>"));
  EXPECT_TRUE(has_text(svg, "<title>fp16, harmbench: 50.0%</title>"));
  // NaN: no bar, but a "not run" mark in its place (a gap would read as 0).
  EXPECT_TRUE(has_text(svg, "<title>int4, harmbench: not run</title>not run</text>"));
  EXPECT_EQ(count(svg, "<title>"), 5);             // document + three bars + the not-run mark
  EXPECT_EQ(count(svg, "stroke=\"#222222\""), 2);  // whiskers where a CI is given
  // The 50% bar: from the bottom edge up half the plot.
  const std::size_t at = svg.find("<title>fp16, harmbench");
  const std::size_t rect = svg.rfind("<rect ", at);
  const std::string bar = svg.substr(rect, at - rect);
  const double y = std::stod(bar.substr(bar.find(" y=\"") + 4));
  const double height = std::stod(bar.substr(bar.find(" height=\"") + 9));
  EXPECT_NEAR(y + height, box.bottom, 0.05);
  EXPECT_NEAR(height, (box.bottom - box.top) / 2, 0.05);
  EXPECT_TRUE(has_text(svg, ">advbench</text>"));
}

TEST(SvgBarChart, NegativeValuesHangBelowZero) {
  BarChart chart{.name = "delta",
                 .series_names = {"d"},
                 .groups = {{.category = "a", .values = {{.y = -1}}}, {.category = "b", .values = {{.y = 1}}}}};
  const std::string svg = render_svg(chart);
  EXPECT_TRUE(has_text(svg, ">0</text>"));
  EXPECT_TRUE(has_text(svg, ">-1</text>"));
  EXPECT_EQ(tag_balance(svg), "");
  EXPECT_TRUE(has_text(render_svg(BarChart{.name = "none"}), ">no data</text>"));
}

TEST(SvgHeatmap, CellsColouredAndNotRunHatched) {
  const std::string svg = render_svg(heatmap());
  EXPECT_TRUE(has_text(svg, "<title>int2, L1: not run</title>"));
  EXPECT_TRUE(has_text(svg, "fill=\"url(#layers-hatch)\""));
  EXPECT_TRUE(has_text(svg, "<pattern id=\"layers-hatch\""));
  EXPECT_TRUE(has_text(svg, ">not run</text>"));  // legend key
  EXPECT_TRUE(has_text(svg, "<title>int4, L1: 37.5%</title>"));
  // The scale's ends: min is viridis' dark end, max (and above it) the bright end.
  EXPECT_TRUE(has_text(svg, "fill=\"#440154\" stroke=\"#ffffff\"><title>int4, L0: 0.0%</title>"));
  EXPECT_TRUE(has_text(svg, "fill=\"#fde725\" stroke=\"#ffffff\"><title>int4, L2: 100.0%</title>"));
  EXPECT_TRUE(has_text(svg, "fill=\"#fde725\" stroke=\"#ffffff\"><title>int2, L2: 200.0%</title>"));
  EXPECT_TRUE(has_text(svg, ">37.5%</text>"));  // value printed in the cell
  EXPECT_TRUE(has_text(svg, ">100%</text>"));   // legend max
}

TEST(SvgHeatmap, EmptyStillRenders) {
  const std::string svg = render_svg(Heatmap{.name = "empty"});
  EXPECT_TRUE(has_text(svg, ">no data</text>"));
  EXPECT_EQ(tag_balance(svg), "");
}

// The message of the InputError `render` throws, or "" when it does not throw.
template <class Chart>
std::string error_of(const Chart& chart) {
  try {
    render_svg(chart);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(SvgChart, BadInputThrowsNamingTheChart) {
  LineChart bad_name = flip_chart();
  bad_name.name = "flip vs bits";
  EXPECT_TRUE(has_text(error_of(bad_name), "line chart name must be [A-Za-z0-9_-]+, got \"flip vs bits\""));
  EXPECT_TRUE(has_text(error_of(LineChart{}), "name must be"));
  EXPECT_TRUE(has_text(error_of(BarChart{.name = "a.b"}), "bar chart name must be"));
  EXPECT_TRUE(has_text(error_of(Heatmap{.name = "<x>"}), "heatmap name must be"));

  LineChart log = flip_chart();
  log.x_log = true;
  log.series[1].points[0].x = 0;
  EXPECT_TRUE(
      has_text(error_of(log), "line chart \"flip_vs_bits\": series \"fp8\" has x 0; a log2 x axis needs every x > 0"));
  log.series[1].points[0].x = 2;
  EXPECT_EQ(error_of(log), "");
  log.x_ticks = {-1};
  EXPECT_TRUE(has_text(error_of(log), "x tick -1 <= 0 on a log2 x axis"));

  LineChart range = flip_chart();
  range.y_min = 1;
  EXPECT_TRUE(has_text(error_of(range), "line chart \"flip_vs_bits\": y_min 1 >= y_max 1"));
  BarChart bars = bar_chart();
  bars.y_max = -0.5;
  EXPECT_TRUE(has_text(error_of(bars), "bar chart \"refusal\": y_min 0 >= y_max -0.5"));
  bars = bar_chart();
  bars.groups[1].values.pop_back();
  EXPECT_TRUE(has_text(error_of(bars), "bar chart \"refusal\": group \"harmbench\" has 1 values, series_names has 2"));

  Heatmap rows = heatmap();
  rows.rows.push_back("int8");
  EXPECT_TRUE(has_text(error_of(rows), "heatmap \"layers\": 2 rows of values for 3 row labels"));
  Heatmap columns = heatmap();
  columns.values[1].pop_back();
  EXPECT_TRUE(has_text(error_of(columns), "heatmap \"layers\": row 1 (\"int2\") has 2 values for 3 columns"));
  Heatmap scale = heatmap();
  scale.max = 0;
  EXPECT_TRUE(has_text(error_of(scale), "heatmap \"layers\": colour scale min 0 must be finite and < max 0"));
}

TEST(SvgChart, OneBoundGivenKeepsAValidRange) {
  LineChart chart{.name = "above", .series = {{.name = "a", .points = {{.x = 1, .y = 0.2}, {.x = 2, .y = 0.3}}}}};
  chart.y_min = 0.5;  // all data below it
  const std::string svg = render_svg(chart);
  EXPECT_EQ(tag_balance(svg), "");
  EXPECT_TRUE(has_text(svg, ">0.5</text>"));
}

TEST(SvgChart, RendersWithRsvgConvert) {
  if (std::system("command -v rsvg-convert >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "rsvg-convert not installed (Debian librsvg2-bin)";
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("kvsafe_svg_chart_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  LineChart scatter = flip_chart();
  scatter.name = "scatter";
  scatter.lines = false;
  LineChart many{.name = "many", .x_reversed = true, .x_log = true};
  for (int s = 0; s < 8; ++s) {
    many.series.push_back({.name = "s" + std::to_string(s)});
    for (int bits = 2; bits <= 16; bits *= 2)
      many.series.back().points.push_back(
          {.x = static_cast<double>(bits), .y = s + 1.0 / bits, .low = static_cast<double>(s), .high = s + 1.0});
  }
  const std::vector<std::pair<std::string, std::string>> charts = {
      {"line", render_svg(flip_chart())}, {"scatter", render_svg(scatter)},
      {"many", render_svg(many)},         {"bar", render_svg(bar_chart())},
      {"heatmap", render_svg(heatmap())}, {"empty", render_svg(LineChart{.name = "e"})}};
  for (const auto& [stem, svg] : charts) {
    const std::filesystem::path in = dir / (stem + ".svg"), out = dir / (stem + ".png");
    std::ofstream(in) << svg;
    const std::string command = "rsvg-convert -o '" + out.string() + "' '" + in.string() + "' 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0) << stem;
    ASSERT_TRUE(std::filesystem::exists(out)) << stem;
    EXPECT_GT(std::filesystem::file_size(out), 0u) << stem;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvsafe::report
