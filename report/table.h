#pragma once
// The rendering core of the paper's tables (`kvsafe tables`, issue 19): a Table model and
// renderers to Markdown, LaTeX (booktabs), CSV and HTML. Torch-free and database-free: the
// table writers fill a Table from SQL, these functions only print it.
//
// A cell is text, a number, a rate (a Proportion with its Wilson 95% CI) or "not run". A
// table never invents a value: a missing cell prints exactly `not run` in every format.
//
// Cell formats in Markdown, LaTeX and HTML (LaTeX escapes the result, so `%` becomes `\%`):
//  - Number, fixed:   value with `decimals` places ("0.93", "1.07"); a rounded -0 ("-0.00")
//    prints without its sign.
//  - Number, percent: value × 100 with `decimals` places and "%" ("12.5%"); the value is a
//    fraction.
//  - Rate:            "12.5% [4.1, 28.9] (n=40)": the rate and the bounds of its 95% Wilson
//    interval in percent with `decimals` places (default 1), then n = trials. A 0/0 rate
//    prints "n/a (n=0)": no rate, no interval.
//  - NaN (e.g. an undefined recovery) prints "n/a"; ±infinity "inf" / "-inf".
//  - Not run: "not run".
// A column is right-aligned (Markdown `---:`, LaTeX `r`, HTML class "num") when it holds at
// least one number or rate and no text; otherwise left-aligned.
//
// CSV (RFC 4180, LF line ends — "\n", not CRLF — and a final LF; Python's csv, pandas and R
// read it): one header row, then one row per table row. A field containing a comma, a double
// quote, CR or LF is quoted, inner quotes doubled. Numbers are raw values (a percent cell
// prints its fraction) with up to 6 decimals, trailing zeros trimmed ("0.125", "3"). A column
// holding any rate becomes four: NAME, NAME_n, NAME_ci_low, NAME_ci_high (fractions in
// [0, 1]); a 0/0 rate is "n/a,0,n/a,n/a"; a non-rate cell in such a column fills NAME and
// leaves the three others empty. NaN prints "n/a" (pandas reads it as NaN).
//
// Grouped headers (optional): `groups` spans the columns left to right. LaTeX prints them as a
// \multicolumn row with \cmidrule under each labelled group, HTML as a row of colspan cells;
// Markdown and CSV, which have no spans, prefix each column header with "GROUP / " where the
// group's label is non-empty.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "eval/statistics.h"

namespace kvsafe::report {

struct TextCell {
  std::string text{};  // printed as is (escaped per format); CR/LF become spaces outside CSV
};

struct NumberCell {
  double value = 0;      // for `percent`, a fraction (0.125 prints "12.5%")
  int decimals = 2;      // places after the decimal point, 0..9
  bool percent = false;  // print value × 100 with a "%" sign
};

struct RateCell {
  eval::Proportion proportion{};  // successes / trials with its Wilson interval
  int decimals = 1;               // places of the percentages, 0..9
};

struct NotRunCell {};

using Cell = std::variant<NotRunCell, TextCell, NumberCell, RateCell>;

// Cell builders for call sites: cell_text("Llama-3.1-8B"), cell_number(1.07),
// cell_percent(0.125), cell_rate(5, 40), cell_not_run().
Cell cell_text(std::string text);
Cell cell_number(double value, int decimals = 2);
Cell cell_percent(double fraction, int decimals = 1);
Cell cell_rate(const eval::Proportion& proportion, int decimals = 1);
Cell cell_rate(std::int64_t successes, std::int64_t trials, int decimals = 1);  // Wilson 95%
Cell cell_not_run();

// A header span over `span` consecutive columns; an empty label leaves them ungrouped.
struct ColumnGroup {
  std::string label{};
  int span = 1;
};

struct Table {
  std::string name{};     // the paper's table name ("custom_all_models"): LaTeX \label{tab:NAME}, CSV file stem
  std::string caption{};  // one line; may be empty
  std::vector<std::string> columns{};     // headers, one per column
  std::vector<ColumnGroup> groups{};      // optional; when present their spans sum to columns.size()
  std::vector<std::vector<Cell>> rows{};  // each exactly columns.size() cells
};

// Throws InputError unless the table is well formed: name of [A-Za-z0-9_-]+, at least one
// column, every row as wide as the header, group spans >= 1 summing to the column count,
// decimals within 0..9. Every renderer calls it first.
void check_table(const Table& table);

// The Markdown/LaTeX/HTML text of a cell before escaping (see the formats above).
std::string format_cell(const Cell& cell);

// GitHub pipe table: "**NAME**: CAPTION" (or "**NAME**"), a blank line, the table with
// columns padded to a common width; '|' in text is escaped as "\|". Ends with a newline.
std::string render_markdown(const Table& table);

// \begin{table}\centering\caption{..}\label{tab:NAME}\begin{tabular}{lrr..}\toprule ..
// \midrule .. \bottomrule\end{tabular}\end{table}, one command per line, ready to \input
// (needs \usepackage{booktabs}). Text, headers and the caption escape & % $ # _ { } ~ ^ \;
// a cell starting with '[' or '*' is prefixed with "{}" so a preceding \\ does not take it
// as an argument.
std::string render_latex(const Table& table);

// RFC 4180 CSV as described above.
std::string render_csv(const Table& table);

// A standalone <table> (no <html> wrapper) with <caption>, <thead> and <tbody>; & < > " '
// escaped; right-aligned cells carry class="num".
std::string render_html(const Table& table);

// The escapers, exposed for the figure and report writers.
std::string escape_latex(const std::string& text);
std::string escape_html(const std::string& text);
std::string quote_csv_field(const std::string& field);

}  // namespace kvsafe::report
