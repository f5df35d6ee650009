#pragma once
// The paper's figures as SVG (`kvsafe report`, `kvsafe figures`): line/scatter charts, grouped
// bar charts and heatmaps. Dependency-free and database-free: the figure writers fill a chart
// from SQL, these functions only draw it.
//
// Output contract (every renderer):
//  - One `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" ...>` element ending in
//    "</svg>\n": width, height and viewBox in px, role="img", id and data-figure = the chart's
//    name, then a <title> (the chart title, else its name) and a <desc> (kind, axes, series).
//    No XML declaration, no script, no external resource, no stylesheet: presentation
//    attributes only, font-family "sans-serif". It inlines as is into HTML5 and is a valid
//    .svg file (rsvg-convert renders it). Ids inside (hatch pattern, colour gradient) are
//    prefixed with the name, so several charts can share one HTML page.
//  - Byte-stable: the same chart gives the same bytes (golden files compare them).
//    Coordinates have 1 decimal and never print "-0.0"; one element per line; series,
//    groups and cells in input order.
//  - Series i is drawn in Okabe-Ito colour i mod 8 (blue, vermillion, bluish green, reddish
//    purple, orange, sky blue, black, yellow) with marker shape i mod 6 (circle, square,
//    triangle, diamond, inverted triangle, cross). Heatmaps use a viridis scale.
//  - Every marker, bar and cell carries a <title> tooltip with its value. A line chart's:
//    "int4 (bits = 4): 37.5% [21.1, 57.3]" — series, x (named by x_label, else "x"), y,
//    and the CI when both bounds are present and finite; a bar's "int4, advbench: 12.5%
//    [5.0, 25.0]" (series, category); a cell's "int4, L3: 37.5%" (row, column) or
//    "int4, L3: not run". A percent value prints value × 100 with 1 decimal and "%", its
//    bounds the same without "%"; other values up to 6 decimals, trailing zeros trimmed
//    ("1.0712", "3").
//  - Tick labels: up to 4 decimals trimmed; percent ticks "50%", "12.5%". Y ticks step by
//    1, 2, 2.5 or 5 × 10^k, 3 to 6 intervals.
//  - Text (titles, labels, names, categories) is XML-escaped: & < > " '.
//  - A point whose x or y is not finite (NaN: not run) is not drawn, breaks its line there,
//    and takes no part in either axis range. A chart without a single drawable point (or
//    bar, or a heatmap without rows or columns) still draws its frame and axes, with a
//    centred "no data".
//  - A legend (right of the plot) appears when there are two series or more.
//  - Heatmap cells print their value when every value fits its cell; column labels wider
//    than a cell are slanted, and thinned to every k-th column when cells are narrower than
//    20 px (the tooltips still name every column).
//  - Nothing is clipped: with a given y range, a point beyond it is drawn beyond the plot's
//    edge; CI bands, whiskers and bars are cut at the edge.
//
// Bad input throws InputError whose message names the chart: a name not [A-Za-z0-9_-]+,
// y_min >= y_max (or either not finite), an x <= 0 (or x tick <= 0) on an x_log chart, a
// non-finite x tick or reference line, a bar group without one value per series, a heatmap
// whose values are not rows × columns, a heatmap scale with min >= max (or either not finite).

#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace kvsafe::report {

struct ChartPoint {
  double x = 0;                  // ignored in a bar chart
  double y = 0;                  // NaN: not run (not drawn)
  std::optional<double> low{};   // lower CI bound in y units; drawn only with `high`
  std::optional<double> high{};  // upper CI bound in y units
};

struct ChartSeries {
  std::string name{};                // legend and tooltip text
  std::vector<ChartPoint> points{};  // any order: a line joins them by increasing x
};

// A dashed horizontal line across the plot, its label right-aligned above it (0.05 "safe < 5%").
struct ReferenceLine {
  double y = 0;         // in y units; part of the default y range
  std::string label{};  // may be empty
};

struct LineChart {
  std::string name{};     // [A-Za-z0-9_-]+: the svg id and data-figure attribute
  std::string title{};    // drawn above the plot; may be empty
  std::string x_label{};  // below the x axis; also names x in tooltips
  std::string y_label{};  // left of the y axis, rotated
  std::vector<ChartSeries> series{};
  bool lines = true;        // false: a scatter, markers with CI whiskers and no lines
  bool x_reversed = false;  // x decreases left to right (bits 16 -> 2, as the paper plots)
  bool y_percent = false;   // y values are fractions; ticks and tooltips print percent
  // The y range. Default: the data's range with its CI bounds and reference lines, padded by
  // 4% (never across 0 or, for percent, across 100%) and widened to whole tick steps.
  std::optional<double> y_min{};
  std::optional<double> y_max{};
  // Default: every distinct drawable x when there are at most 12 and their labels do not
  // touch; else powers of two (x_log) or round steps, 3 to 6 intervals. The x range is the
  // data's exact range (no padding: the extreme points sit on the plot's edges), widened to
  // cover these ticks.
  std::vector<double> x_ticks{};
  // Drawn dashed; one outside a given y range is not drawn.
  std::vector<ReferenceLine> reference_lines{};
  // log2 x axis (bits, overhead ratios); every x must be > 0.
  bool x_log = false;
};

// One group of bars along x, one bar per series (in series_names order); a NaN y draws no bar.
struct BarGroup {
  std::string category{};            // the label under the group
  std::vector<ChartPoint> values{};  // exactly series_names.size(); x is ignored
};

struct BarChart {
  std::string name{};                       // [A-Za-z0-9_-]+: the svg id and data-figure attribute
  std::string title{};                      // drawn above the plot; may be empty
  std::string x_label{};                    // below the category labels
  std::string y_label{};                    // left of the y axis, rotated
  std::vector<std::string> series_names{};  // one per bar of a group; legend when two or more
  std::vector<BarGroup> groups{};
  bool y_percent = false;  // y values are fractions; ticks and tooltips print percent
  // The y range. Default: as LineChart's, always including 0, the bars' base.
  std::optional<double> y_min{};
  std::optional<double> y_max{};
};

struct Heatmap {
  std::string name{};                  // [A-Za-z0-9_-]+: the svg id and data-figure attribute
  std::string title{};                 // drawn above the grid; may be empty
  std::string x_label{};               // below the column labels
  std::string y_label{};               // left of the row labels, rotated
  std::vector<std::string> rows{};     // top to bottom
  std::vector<std::string> columns{};  // left to right
  // [rows][columns]. NaN: not run, drawn hatched grey with a "not run" tooltip. Values
  // outside [min, max] take the end colour; the cell text and tooltip show the true value.
  std::vector<std::vector<double>> values{};
  double min = 0;       // value at the scale's dark end
  double max = 1;       // value at the scale's bright end
  bool percent = true;  // values are fractions: cell text, legend and tooltips print percent
};

// The SVG text of a chart, as described above. Throws InputError on bad input.
std::string render_svg(const LineChart& chart);
std::string render_svg(const BarChart& chart);
std::string render_svg(const Heatmap& chart);

}  // namespace kvsafe::report
