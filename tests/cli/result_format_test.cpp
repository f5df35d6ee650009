#include "cli/result_format.h"

#include <gtest/gtest.h>

namespace kvsafe::cli {
namespace {

db::QueryResult sample() {
  db::QueryResult result;
  result.columns = {"name", "n", "x", "note"};
  result.rows.push_back({std::string("a,b"), std::int64_t{3}, 0.5, std::monostate{}});
  result.rows.push_back({std::string("say \"hi\"\nbye"), std::int64_t{-1}, 1e-300, std::string("")});
  return result;
}

TEST(ResultFormat, CsvQuotesPerRfc4180) {
  EXPECT_EQ(format_query_result(sample(), ResultFormat::kCsv),
            "name,n,x,note\r\n\"a,b\",3,0.5,\r\n\"say \"\"hi\"\"\nbye\",-1,1e-300,\r\n");
}

TEST(ResultFormat, JsonKeepsTypesAndNulls) {
  EXPECT_EQ(
      format_query_result(sample(), ResultFormat::kJson),
      "[\n  {\n    \"name\": \"a,b\",\n    \"n\": 3,\n    \"x\": 0.5,\n    \"note\": null\n  },\n"
      "  {\n    \"name\": \"say \\\"hi\\\"\\nbye\",\n    \"n\": -1,\n    \"x\": 1e-300,\n    \"note\": \"\"\n  }\n]\n");
}

TEST(ResultFormat, TableAlignsAndEscapesNewlines) {
  EXPECT_EQ(format_query_result(sample(), ResultFormat::kTable),
            "name           n   x       note\n"
            "-------------  --  ------  ----\n"
            "a,b            3   0.5\n"
            "say \"hi\"\\nbye  -1  1e-300\n"
            "(2 rows)\n");
}

}  // namespace
}  // namespace kvsafe::cli
