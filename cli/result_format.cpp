#include "cli/result_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace kvsafe::cli {
namespace {

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string as_csv(const db::QueryResult& result) {
  std::string out;
  for (std::size_t i = 0; i < result.columns.size(); ++i) out += (i ? "," : "") + csv_field(result.columns[i]);
  out += "\r\n";
  for (const auto& row : result.rows) {
    for (std::size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + csv_field(db::query_value_to_string(row[i]));
    out += "\r\n";
  }
  return out;
}

std::string as_json(const db::QueryResult& result) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& row : result.rows) {
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::visit(
          [&](const auto& value) {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
              object[result.columns[i]] = nullptr;
            } else {
              object[result.columns[i]] = value;
            }
          },
          row[i]);
    }
    rows.push_back(std::move(object));
  }
  // NOTE: replace invalid UTF-8 instead of throwing: stored model outputs may hold any bytes.
  return rows.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string as_table(const db::QueryResult& result) {
  std::vector<std::size_t> width(result.columns.size());
  for (std::size_t i = 0; i < result.columns.size(); ++i) width[i] = result.columns[i].size();
  std::vector<std::vector<std::string>> cells;
  for (const auto& row : result.rows) {
    auto& texts = cells.emplace_back();
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::string text = db::query_value_to_string(row[i]);
      // One table row per result row: newlines and tabs inside values are shown escaped.
      std::string flat;
      for (char c : text) flat += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : std::string(1, c);
      width[i] = std::max(width[i], flat.size());
      texts.push_back(std::move(flat));
    }
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& values) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      out += fmt::format("{}{:<{}}", i ? "  " : "", values[i], width[i]);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
  };
  line(result.columns);
  std::vector<std::string> rule;
  for (std::size_t w : width) rule.emplace_back(w, '-');
  line(rule);
  for (const auto& texts : cells) line(texts);
  out += fmt::format("({} row{})\n", result.rows.size(), result.rows.size() == 1 ? "" : "s");
  return out;
}

}  // namespace

std::string format_query_result(const db::QueryResult& result, ResultFormat format) {
  switch (format) {
    case ResultFormat::kCsv:
      return as_csv(result);
    case ResultFormat::kJson:
      return as_json(result);
    case ResultFormat::kTable:
      break;
  }
  return as_table(result);
}

}  // namespace kvsafe::cli
