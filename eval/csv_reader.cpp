#include "eval/csv_reader.h"

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace kvsafe::eval {
namespace {

// A record end at `i`: "\n", "\r\n", or a lone "\r" (old Mac files). Returns its length.
std::size_t line_break_at(std::string_view text, std::size_t i) {
  if (text[i] == '\n') return 1;
  if (text[i] == '\r') return (i + 1 < text.size() && text[i + 1] == '\n') ? 2 : 1;
  return 0;
}

}  // namespace

std::size_t CsvTable::column(std::string_view name) const {
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return i;
  }
  std::string known;
  for (const std::string& h : header) known += (known.empty() ? "" : ", ") + ("'" + h + "'");
  KVSAFE_CHECK(false, source, ":1: no column '", name, "' in the header (columns: ", known, ")");
  return 0;
}

CsvTable parse_csv(std::string_view text, const std::string& source) {
  CsvTable table;
  table.source = source;
  std::size_t i = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;  // UTF-8 BOM
  std::int64_t line = 1;
  bool have_header = false;

  while (i < text.size()) {
    CsvRecord record;
    record.line = line;
    // One record: fields until a line break outside quotes or the end of the text.
    while (true) {
      std::string field;
      if (i < text.size() && text[i] == '"') {
        const std::int64_t opened_at = line;
        ++i;
        while (true) {
          KVSAFE_CHECK(i < text.size(), source, ":", opened_at, ": quoted field never closed (missing '\"')");
          if (text[i] == '"') {
            if (i + 1 < text.size() && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (text[i] == '\n') ++line;
          if (text[i] == '\r' && (i + 1 >= text.size() || text[i + 1] != '\n')) ++line;
          field += text[i++];
        }
        KVSAFE_CHECK(i >= text.size() || text[i] == ',' || line_break_at(text, i) > 0, source, ":", line,
                     ": unexpected character after a closing quote (RFC 4180: a quoted field ends at ',' or the "
                     "line end)");
      } else {
        while (i < text.size() && text[i] != ',' && line_break_at(text, i) == 0) {
          KVSAFE_CHECK(text[i] != '"', source, ":", line,
                       ": '\"' inside an unquoted field (RFC 4180: quote the whole field and double the quote)");
          field += text[i++];
        }
      }
      record.fields.push_back(std::move(field));
      if (i < text.size() && text[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
    if (i < text.size()) {
      i += line_break_at(text, i);
      ++line;
    }
    if (!have_header) {
      table.header = std::move(record.fields);
      have_header = true;
      continue;
    }
    KVSAFE_CHECK(record.fields.size() == table.header.size(), source, ":", record.line, ": ", record.fields.size(),
                 " fields, but the header has ", table.header.size());
    table.records.push_back(std::move(record));
  }
  KVSAFE_CHECK(have_header, source, ": empty CSV file (no header)");
  return table;
}

CsvTable read_csv_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  KVSAFE_CHECK(in, path.string(), ": cannot open");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  KVSAFE_CHECK(!in.bad(), path.string(), ": read error");
  return parse_csv(buffer.str(), path.string());
}

}  // namespace kvsafe::eval
