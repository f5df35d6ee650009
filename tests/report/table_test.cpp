// The table renderers on small tables with their expected output written out by hand: every
// format, LaTeX escaping of every special character, CSV quoting, "not run" and 0/0 cells.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "common/error.h"
#include "report/table.h"

namespace kvsafe::report {
namespace {

// A rate whose interval is given (not Wilson's) so the expected text is easy to check by eye.
Cell fixed_rate(std::int64_t k, std::int64_t n, double lower, double upper) {
  return cell_rate(eval::Proportion{.successes = k,
                                    .trials = n,
                                    .rate = static_cast<double>(k) / static_cast<double>(n),
                                    .lower = lower,
                                    .upper = upper});
}

Table demo() {
  return Table{
      .name = "demo",
      .caption = "Refusal & flip",
      .columns = {"model", "bits", "ppl ratio", "flip"},
      .rows = {{cell_text("Llama_3"), cell_number(4, 0), cell_number(1.0712), fixed_rate(5, 40, 0.05, 0.25)},
               {cell_text("Qwen"), cell_number(3, 0), cell_not_run(), cell_rate(0, 0)}},
  };
}

TEST(Table, Markdown) {
  EXPECT_EQ(render_markdown(demo()),
            "**demo**: Refusal & flip\n"
            "\n"
            "| model   | bits | ppl ratio |                     flip |\n"
            "|---------|-----:|----------:|-------------------------:|\n"
            "| Llama_3 |    4 |      1.07 | 12.5% [5.0, 25.0] (n=40) |\n"
            "| Qwen    |    3 |   not run |                n/a (n=0) |\n");
}

TEST(Table, Latex) {
  EXPECT_EQ(render_latex(demo()),
            R"(\begin{table}
\centering
\caption{Refusal \& flip}
\label{tab:demo}
\begin{tabular}{lrrr}
\toprule
model & bits & ppl ratio & flip \\
\midrule
Llama\_3 & 4 & 1.07 & 12.5\% [5.0, 25.0] (n=40) \\
Qwen & 3 & not run & n/a (n=0) \\
\bottomrule
\end{tabular}
\end{table}
)");
}

TEST(Table, Csv) {
  EXPECT_EQ(render_csv(demo()),
            "model,bits,ppl ratio,flip,flip_n,flip_ci_low,flip_ci_high\n"
            "Llama_3,4,1.0712,0.125,40,0.05,0.25\n"
            "Qwen,3,not run,n/a,0,n/a,n/a\n");
}

TEST(Table, Html) {
  EXPECT_EQ(render_html(demo()),
            "<table id=\"tab-demo\">\n"
            "<caption>Refusal &amp; flip</caption>\n"
            "<thead>\n"
            "<tr><th>model</th><th class=\"num\">bits</th><th class=\"num\">ppl ratio</th><th "
            "class=\"num\">flip</th></tr>\n"
            "</thead>\n"
            "<tbody>\n"
            "<tr><td>Llama_3</td><td class=\"num\">4</td><td class=\"num\">1.07</td><td class=\"num\">12.5% [5.0, "
            "25.0] (n=40)</td></tr>\n"
            "<tr><td>Qwen</td><td class=\"num\">3</td><td class=\"num\">not run</td><td class=\"num\">n/a "
            "(n=0)</td></tr>\n"
            "</tbody>\n"
            "</table>\n");
}

Table grouped() {
  return Table{
      .name = "grouped",
      .columns = {"model", "refusal", "flip"},
      .groups = {{.label = "", .span = 1}, {.label = "int4", .span = 2}},
      .rows = {{cell_text("m"), cell_percent(0.5), cell_not_run()}},
  };
}

TEST(Table, GroupedHeaders) {
  EXPECT_EQ(render_latex(grouped()),
            R"(\begin{table}
\centering
\label{tab:grouped}
\begin{tabular}{lrl}
\toprule
 & \multicolumn{2}{c}{int4} \\
\cmidrule(lr){2-3}
model & refusal & flip \\
\midrule
m & 50.0\% & not run \\
\bottomrule
\end{tabular}
\end{table}
)");
  EXPECT_EQ(render_markdown(grouped()),
            "**grouped**\n"
            "\n"
            "| model | int4 / refusal | int4 / flip |\n"
            "|-------|---------------:|-------------|\n"
            "| m     |          50.0% | not run     |\n");
  EXPECT_EQ(render_csv(grouped()),
            "model,int4 / refusal,int4 / flip\n"
            "m,0.5,not run\n");
  EXPECT_NE(render_html(grouped()).find("<tr><th></th><th colspan=\"2\">int4</th></tr>\n"), std::string::npos);
}

TEST(Table, LatexEscapesEverySpecialCharacter) {
  EXPECT_EQ(escape_latex(R"(& % $ # _ { } ~ ^ \ plain)"),
            R"(\& \% \$ \# \_ \{ \} \textasciitilde{} \textasciicircum{} \textbackslash{} plain)");
  const Table t{.name = "esc",
                .caption = "50% of {x}",
                .columns = {"a_b", "c"},
                .rows = {{cell_text("[note] x\ny"), cell_text(R"(\emph{1})")}}};
  EXPECT_EQ(render_latex(t),
            R"(\begin{table}
\centering
\caption{50\% of \{x\}}
\label{tab:esc}
\begin{tabular}{ll}
\toprule
a\_b & c \\
\midrule
{}[note] x y & \textbackslash{}emph\{1\} \\
\bottomrule
\end{tabular}
\end{table}
)");
}

TEST(Table, CsvQuoting) {
  EXPECT_EQ(quote_csv_field("plain"), "plain");
  EXPECT_EQ(quote_csv_field(""), "");
  EXPECT_EQ(quote_csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(quote_csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(quote_csv_field("\""), "\"\"\"\"");
  EXPECT_EQ(quote_csv_field("line\nbreak"), "\"line\nbreak\"");
  EXPECT_EQ(quote_csv_field("cr\r"), "\"cr\r\"");
  EXPECT_EQ(quote_csv_field("semi;colon 'single'"), "semi;colon 'single'");
  const Table t{
      .name = "q",
      .columns = {"name, full", "rate"},
      .rows = {{cell_text("A \"quoted\"\nname"), cell_text("-")}, {cell_not_run(), fixed_rate(1, 4, 0, 0.5)}}};
  EXPECT_EQ(render_csv(t),
            "\"name, full\",rate,rate_n,rate_ci_low,rate_ci_high\n"
            "\"A \"\"quoted\"\"\nname\",-,,,\n"
            "not run,0.25,4,0,0.5\n");
}

TEST(Table, MarkdownEscapesPipesAndNewlines) {
  const Table t{.name = "p", .columns = {"x"}, .rows = {{cell_text("a|b\r\nc")}}};
  EXPECT_EQ(render_markdown(t),
            "**p**\n"
            "\n"
            "| x      |\n"
            "|--------|\n"
            "| a\\|b c |\n");
}

TEST(Table, CellFormats) {
  EXPECT_EQ(format_cell(cell_not_run()), "not run");
  EXPECT_EQ(format_cell(cell_text("x")), "x");
  EXPECT_EQ(format_cell(cell_number(1.0712)), "1.07");
  EXPECT_EQ(format_cell(cell_number(2.5, 0)), "2");  // round half to even, as printf
  EXPECT_EQ(format_cell(cell_number(-0.001, 2)), "0.00");
  EXPECT_EQ(format_cell(cell_number(-1.5, 1)), "-1.5");
  EXPECT_EQ(format_cell(cell_number(std::nan(""))), "n/a");
  EXPECT_EQ(format_cell(cell_number(std::numeric_limits<double>::infinity())), "inf");
  EXPECT_EQ(format_cell(cell_percent(0.125)), "12.5%");
  EXPECT_EQ(format_cell(cell_percent(std::nan(""))), "n/a");
  // Wilson 95% for 5/40: [0.054595, 0.261121]; for 0/10: [0, 0.277533].
  EXPECT_EQ(format_cell(cell_rate(5, 40)), "12.5% [5.5, 26.1] (n=40)");
  EXPECT_EQ(format_cell(cell_rate(5, 40, 2)), "12.50% [5.46, 26.11] (n=40)");
  EXPECT_EQ(format_cell(cell_rate(0, 10)), "0.0% [0.0, 27.8] (n=10)");
  EXPECT_EQ(format_cell(cell_rate(0, 0)), "n/a (n=0)");
  const Table t{.name = "w", .columns = {"r"}, .rows = {{cell_rate(5, 40)}, {cell_rate(0, 0)}}};
  EXPECT_EQ(render_csv(t),
            "r,r_n,r_ci_low,r_ci_high\n"
            "0.125,40,0.054595,0.261121\n"
            "n/a,0,n/a,n/a\n");
}

TEST(Table, RefusesMalformedTables) {
  Table t = demo();
  t.rows[1].pop_back();
  EXPECT_THROW(render_markdown(t), InputError);
  t = demo();
  t.name = "bad name";
  EXPECT_THROW(render_latex(t), InputError);
  t = demo();
  t.name = "";
  EXPECT_THROW(render_csv(t), InputError);
  t = demo();
  t.groups = {{.label = "g", .span = 3}};
  EXPECT_THROW(render_html(t), InputError);
  t.groups = {{.label = "g", .span = 0}, {.label = "h", .span = 4}};
  EXPECT_THROW(check_table(t), InputError);
  t = demo();
  t.rows[0][1] = cell_number(1, 12);
  EXPECT_THROW(check_table(t), InputError);
  EXPECT_THROW(check_table(Table{.name = "empty"}), InputError);
  EXPECT_NO_THROW(check_table(Table{.name = "no_rows", .columns = {"a"}}));
}

}  // namespace
}  // namespace kvsafe::report
