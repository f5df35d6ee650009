#include "report/table.h"

#include <fmt/format.h>

#include <cmath>
#include <cstddef>
#include <utility>

#include "common/error.h"

namespace kvsafe::report {

namespace {

template <class... Fs>
struct Overload : Fs... {
  using Fs::operator()...;
};

// Fixed-point with `decimals` places; NaN "n/a", infinities "inf"/"-inf", -0 as 0.
std::string fixed(double value, int decimals) {
  if (std::isnan(value)) return "n/a";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  std::string out = fmt::format("{:.{}f}", value, decimals);
  if (out.starts_with('-') && out.find_first_not_of("-0.") == std::string::npos) out.erase(0, 1);
  return out;
}

// CSV numbers: up to 6 decimals, trailing zeros (and a bare point) trimmed.
std::string raw(double value) {
  std::string out = fixed(value, 6);
  if (out.find('.') != std::string::npos && !std::isnan(value) && !std::isinf(value)) {
    out.erase(out.find_last_not_of('0') + 1);
    if (out.ends_with('.')) out.pop_back();
    if (out == "-0") out = "0";
  }
  return out;
}

// Newlines would end a Markdown row or a LaTeX paragraph: one space instead.
std::string one_line(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' || text[i] == '\n') {
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += ' ';
    } else {
      out += text[i];
    }
  }
  return out;
}

// Display width in code points (UTF-8 continuation bytes do not count).
std::size_t width(const std::string& text) {
  std::size_t n = 0;
  for (const unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

bool right_aligned(const Table& table, std::size_t column) {
  bool numeric = false;
  for (const auto& row : table.rows) {
    if (std::holds_alternative<TextCell>(row[column])) return false;
    if (!std::holds_alternative<NotRunCell>(row[column])) numeric = true;
  }
  return numeric;
}

bool rate_column(const Table& table, std::size_t column) {
  for (const auto& row : table.rows)
    if (std::holds_alternative<RateCell>(row[column])) return true;
  return false;
}

// Column headers with their group's label in front ("GROUP / COLUMN"), for formats without spans.
std::vector<std::string> flat_headers(const Table& table) {
  std::vector<std::string> out = table.columns;
  std::size_t column = 0;
  for (const auto& group : table.groups) {
    for (int i = 0; i < group.span; ++i, ++column)
      if (!group.label.empty()) out[column] = group.label + " / " + out[column];
  }
  return out;
}

std::string latex_cell(const std::string& text) {
  std::string out = escape_latex(one_line(text));
  if (out.starts_with('[') || out.starts_with('*')) out.insert(0, "{}");
  return out;
}

}  // namespace

Cell cell_text(std::string text) {
  return TextCell{.text = std::move(text)};
}
Cell cell_number(double value, int decimals) {
  return NumberCell{.value = value, .decimals = decimals, .percent = false};
}
Cell cell_percent(double fraction, int decimals) {
  return NumberCell{.value = fraction, .decimals = decimals, .percent = true};
}
Cell cell_rate(const eval::Proportion& proportion, int decimals) {
  return RateCell{.proportion = proportion, .decimals = decimals};
}
Cell cell_rate(std::int64_t successes, std::int64_t trials, int decimals) {
  return RateCell{.proportion = eval::wilson_interval(successes, trials), .decimals = decimals};
}
Cell cell_not_run() {
  return NotRunCell{};
}

void check_table(const Table& table) {
  KVSAFE_CHECK(
      !table.name.empty() && table.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                          "0123456789_-") == std::string::npos,
      "table name must be [A-Za-z0-9_-]+, got \"", table.name, "\"");
  KVSAFE_CHECK(!table.columns.empty(), "table ", table.name, ": no columns");
  if (!table.groups.empty()) {
    std::size_t spanned = 0;
    for (const auto& group : table.groups) {
      KVSAFE_CHECK(group.span >= 1, "table ", table.name, ": group \"", group.label, "\" spans ", group.span,
                   " columns");
      spanned += static_cast<std::size_t>(group.span);
    }
    KVSAFE_CHECK(spanned == table.columns.size(), "table ", table.name, ": groups span ", spanned,
                 " columns, the table has ", table.columns.size());
  }
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const auto& row = table.rows[r];
    KVSAFE_CHECK(row.size() == table.columns.size(), "table ", table.name, ": row ", r, " has ", row.size(),
                 " cells, the header ", table.columns.size());
    for (std::size_t c = 0; c < row.size(); ++c) {
      int decimals = 0;
      if (const auto* n = std::get_if<NumberCell>(&row[c])) decimals = n->decimals;
      if (const auto* rate = std::get_if<RateCell>(&row[c])) decimals = rate->decimals;
      KVSAFE_CHECK(decimals >= 0 && decimals <= 9, "table ", table.name, ": row ", r, " column ", c, ": decimals ",
                   decimals, " not in 0..9");
    }
  }
}

std::string format_cell(const Cell& cell) {
  return std::visit(Overload{
                        [](const NotRunCell&) { return std::string("not run"); },
                        [](const TextCell& t) { return t.text; },
                        [](const NumberCell& n) {
                          if (!n.percent) return fixed(n.value, n.decimals);
                          std::string out = fixed(n.value * 100, n.decimals);
                          return std::isfinite(n.value) ? out + "%" : out;
                        },
                        [](const RateCell& r) {
                          const auto& p = r.proportion;
                          if (p.trials == 0) return std::string("n/a (n=0)");
                          return fmt::format("{}% [{}, {}] (n={})", fixed(p.rate * 100, r.decimals),
                                             fixed(p.lower * 100, r.decimals), fixed(p.upper * 100, r.decimals),
                                             p.trials);
                        },
                    },
                    cell);
}

std::string render_markdown(const Table& table) {
  check_table(table);
  const std::size_t columns = table.columns.size();
  std::vector<std::vector<std::string>> text;  // header, then the rows
  auto md = [](const std::string& s) {
    std::string out;
    for (const char c : one_line(s)) {
      if (c == '|') out += '\\';
      out += c;
    }
    return out;
  };
  std::vector<std::string> header;
  for (const auto& h : flat_headers(table)) header.push_back(md(h));
  text.push_back(std::move(header));
  for (const auto& row : table.rows) {
    std::vector<std::string> line;
    for (const auto& cell : row) line.push_back(md(format_cell(cell)));
    text.push_back(std::move(line));
  }
  std::vector<std::size_t> widths(columns, 3);
  std::vector<bool> right(columns);
  for (std::size_t c = 0; c < columns; ++c) {
    right[c] = right_aligned(table, c);
    for (const auto& line : text) widths[c] = std::max(widths[c], width(line[c]));
  }
  std::string out = "**" + table.name + "**";
  if (!table.caption.empty()) out += ": " + one_line(table.caption);
  out += "\n\n";
  auto emit = [&](const std::vector<std::string>& line) {
    out += '|';
    for (std::size_t c = 0; c < columns; ++c) {
      const std::string pad(widths[c] - width(line[c]), ' ');
      out += ' ' + (right[c] ? pad + line[c] : line[c] + pad) + " |";
    }
    out += '\n';
  };
  emit(text[0]);
  out += '|';
  for (std::size_t c = 0; c < columns; ++c)
    out += right[c] ? std::string(widths[c] + 1, '-') + ":|" : std::string(widths[c] + 2, '-') + '|';
  out += '\n';
  for (std::size_t r = 1; r < text.size(); ++r) emit(text[r]);
  return out;
}

std::string render_latex(const Table& table) {
  check_table(table);
  const std::size_t columns = table.columns.size();
  std::string spec;
  for (std::size_t c = 0; c < columns; ++c) spec += right_aligned(table, c) ? 'r' : 'l';
  std::string out = "\\begin{table}\n\\centering\n";
  if (!table.caption.empty()) out += "\\caption{" + escape_latex(one_line(table.caption)) + "}\n";
  out += "\\label{tab:" + table.name + "}\n\\begin{tabular}{" + spec + "}\n\\toprule\n";
  if (!table.groups.empty()) {
    std::string rules;
    std::size_t first = 1;  // 1-based column of the group's start
    for (std::size_t g = 0; g < table.groups.size(); ++g) {
      const auto& group = table.groups[g];
      const auto span = static_cast<std::size_t>(group.span);
      if (g > 0) out += " & ";
      if (group.label.empty()) {
        for (std::size_t i = 1; i < span; ++i) out += " & ";
      } else {
        out += fmt::format("\\multicolumn{{{}}}{{c}}{{{}}}", span, latex_cell(group.label));
        rules += fmt::format("\\cmidrule(lr){{{}-{}}}", first, first + span - 1);
      }
      first += span;
    }
    out += " \\\\\n";
    if (!rules.empty()) out += rules + "\n";
  }
  auto emit = [&](const std::vector<std::string>& cells) {
    for (std::size_t c = 0; c < cells.size(); ++c) out += (c > 0 ? " & " : "") + latex_cell(cells[c]);
    out += " \\\\\n";
  };
  emit(table.columns);
  out += "\\midrule\n";
  for (const auto& row : table.rows) {
    std::vector<std::string> cells;
    for (const auto& cell : row) cells.push_back(format_cell(cell));
    emit(cells);
  }
  out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
  return out;
}

std::string render_csv(const Table& table) {
  check_table(table);
  const std::size_t columns = table.columns.size();
  std::vector<bool> rates(columns);
  for (std::size_t c = 0; c < columns; ++c) rates[c] = rate_column(table, c);
  std::string out;
  auto emit = [&](const std::vector<std::string>& fields) {
    for (std::size_t i = 0; i < fields.size(); ++i) out += (i > 0 ? "," : "") + quote_csv_field(fields[i]);
    out += '\n';
  };
  const auto headers = flat_headers(table);
  std::vector<std::string> fields;
  for (std::size_t c = 0; c < columns; ++c) {
    fields.push_back(headers[c]);
    if (rates[c])
      for (const char* suffix : {"_n", "_ci_low", "_ci_high"}) fields.push_back(headers[c] + suffix);
  }
  emit(fields);
  for (const auto& row : table.rows) {
    fields.clear();
    for (std::size_t c = 0; c < columns; ++c) {
      if (const auto* rate = std::get_if<RateCell>(&row[c])) {
        const auto& p = rate->proportion;
        const bool none = p.trials == 0;
        fields.push_back(none ? "n/a" : raw(p.rate));
        fields.push_back(std::to_string(p.trials));
        fields.push_back(none ? "n/a" : raw(p.lower));
        fields.push_back(none ? "n/a" : raw(p.upper));
        continue;
      }
      std::visit(Overload{
                     [&](const NotRunCell&) { fields.emplace_back("not run"); },
                     [&](const TextCell& t) { fields.push_back(t.text); },
                     [&](const NumberCell& n) { fields.push_back(raw(n.value)); },
                     [&](const RateCell&) {},
                 },
                 row[c]);
      if (rates[c]) fields.insert(fields.end(), 3, "");
    }
    emit(fields);
  }
  return out;
}

std::string render_html(const Table& table) {
  check_table(table);
  const std::size_t columns = table.columns.size();
  std::vector<bool> right(columns);
  for (std::size_t c = 0; c < columns; ++c) right[c] = right_aligned(table, c);
  std::string out = "<table id=\"tab-" + table.name + "\">\n";
  if (!table.caption.empty()) out += "<caption>" + escape_html(table.caption) + "</caption>\n";
  out += "<thead>\n";
  if (!table.groups.empty()) {
    out += "<tr>";
    for (const auto& group : table.groups) {
      out += group.span > 1 ? fmt::format("<th colspan=\"{}\">", group.span) : std::string("<th>");
      out += escape_html(group.label) + "</th>";
    }
    out += "</tr>\n";
  }
  auto emit = [&](const std::vector<std::string>& cells, const char* tag) {
    out += "<tr>";
    for (std::size_t c = 0; c < columns; ++c)
      out += fmt::format("<{}{}>{}</{}>", tag, right[c] ? " class=\"num\"" : "", escape_html(cells[c]), tag);
    out += "</tr>\n";
  };
  emit(table.columns, "th");
  out += "</thead>\n<tbody>\n";
  for (const auto& row : table.rows) {
    std::vector<std::string> cells;
    for (const auto& cell : row) cells.push_back(format_cell(cell));
    emit(cells, "td");
  }
  out += "</tbody>\n</table>\n";
  return out;
}

std::string escape_latex(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "\\&";
        break;
      case '%':
        out += "\\%";
        break;
      case '$':
        out += "\\$";
        break;
      case '#':
        out += "\\#";
        break;
      case '_':
        out += "\\_";
        break;
      case '{':
        out += "\\{";
        break;
      case '}':
        out += "\\}";
        break;
      case '~':
        out += "\\textasciitilde{}";
        break;
      case '^':
        out += "\\textasciicircum{}";
        break;
      case '\\':
        out += "\\textbackslash{}";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string quote_csv_field(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (const char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace kvsafe::report
