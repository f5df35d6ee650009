// RFC 4180 parsing: quotes, doubled quotes, embedded commas and line breaks, CRLF, BOM, and
// errors that name file:line.

#include <gtest/gtest.h>

#include "common/error.h"
#include "eval/csv_reader.h"

namespace kvsafe::eval {
namespace {

TEST(CsvReader, PlainAndQuotedFields) {
  const CsvTable table = parse_csv("a,b,c\n1,\"two, 2\",\"say \"\"hi\"\"\"\n,,\n", "t.csv");
  ASSERT_EQ(table.header, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(table.records.size(), 2u);
  EXPECT_EQ(table.records[0].fields, (std::vector<std::string>{"1", "two, 2", "say \"hi\""}));
  EXPECT_EQ(table.records[1].fields, (std::vector<std::string>{"", "", ""}));
  EXPECT_EQ(table.records[0].line, 2);
  EXPECT_EQ(table.records[1].line, 3);
}

TEST(CsvReader, CrlfRecordsAndEmbeddedLineBreaksKeepTheirBytes) {
  // The quoted field spans lines 2-3 and keeps its CRLF; the next record starts on line 4.
  const CsvTable table = parse_csv("\xEF\xBB\xBFk,v\r\nx,\"first\r\nsecond\"\r\ny,z\r\n", "t.csv");
  ASSERT_EQ(table.header, (std::vector<std::string>{"k", "v"}));
  ASSERT_EQ(table.records.size(), 2u);
  EXPECT_EQ(table.records[0].fields[1], "first\r\nsecond");
  EXPECT_EQ(table.records[1].line, 4);
  EXPECT_EQ(table.records[1].fields[1], "z");
}

TEST(CsvReader, LastRecordWithoutLineBreak) {
  const CsvTable table = parse_csv("k\nlast", "t.csv");
  ASSERT_EQ(table.records.size(), 1u);
  EXPECT_EQ(table.records[0].fields[0], "last");
}

TEST(CsvReader, ColumnLookupNamesTheColumns) {
  const CsvTable table = parse_csv("goal,target\n", "t.csv");
  EXPECT_EQ(table.column("target"), 1u);
  try {
    (void)table.column("prompt");
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("t.csv:1: no column 'prompt'"), std::string::npos) << error.what();
  }
}

void expect_error(const std::string& text, const std::string& where_and_why) {
  try {
    (void)parse_csv(text, "bad.csv");
    FAIL() << "expected InputError containing " << where_and_why;
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find(where_and_why), std::string::npos) << error.what();
  }
}

TEST(CsvReader, ErrorsNameFileAndLine) {
  expect_error("a,b\n1,2\n3,\"open\nstill open", "bad.csv:3: quoted field never closed");
  expect_error("a,b\n1,2\n3,4,5\n", "bad.csv:3: 3 fields, but the header has 2");
  expect_error("a\nab\"c\n", "bad.csv:2: '\"' inside an unquoted field");
  expect_error("a,b\n\"x\"y,2\n", "bad.csv:2: unexpected character after a closing quote");
  expect_error("", "bad.csv: empty CSV file");
}

}  // namespace
}  // namespace kvsafe::eval
