#pragma once
// An RFC 4180 CSV reader for the benchmark files: quoted fields with "" escapes, commas
// and line breaks inside quotes, LF or CRLF record ends, an optional UTF-8 BOM. Fields
// keep their bytes exactly (a CRLF inside a quoted field stays CRLF), because the sha256
// of a prompt's text must not depend on how the reader treats line ends.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace kvsafe::eval {

struct CsvRecord {
  std::vector<std::string> fields{};
  std::int64_t line = 0;  // 1-based line where the record starts (quoted line breaks advance it)
};

struct CsvTable {
  std::string source{};               // the file name used in error messages
  std::vector<std::string> header{};  // the first record
  std::vector<CsvRecord> records{};   // every later record, in file order

  // Index of the column named `name`; throws InputError naming the file and the header
  // when there is none.
  std::size_t column(std::string_view name) const;
};

// Parses CSV text. `source` names the text in errors. Throws InputError "source:line: why"
// for an unterminated quoted field, a stray quote, a character after a closing quote, or
// a record whose field count differs from the header's. An empty last line is no record.
CsvTable parse_csv(std::string_view text, const std::string& source);

// Reads and parses a file (the message names the path when it cannot be read).
CsvTable read_csv_file(const std::filesystem::path& path);

}  // namespace kvsafe::eval
