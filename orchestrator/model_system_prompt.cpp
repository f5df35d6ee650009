#include "orchestrator/model_system_prompt.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>

namespace kvsafe::orchestrator {
namespace {

std::string iso(const std::chrono::year_month_day& day) {
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(day.year()), static_cast<unsigned>(day.month()),
                     static_cast<unsigned>(day.day()));
}

std::chrono::year_month_day day_of(const std::string& date) {
  int y = 0;
  unsigned m = 0, d = 0;
  std::sscanf(date.c_str(), "%d-%u-%u", &y, &m, &d);  // NOLINT: parse_iso_date checked the shape
  return std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
}

void replace_all(std::string& text, std::string_view from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

}  // namespace

std::optional<std::string> parse_iso_date(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  for (const std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  }
  const std::chrono::year_month_day day = day_of(std::string(text));
  if (!day.ok()) return std::nullopt;
  return iso(day);
}

bool has_date_placeholder(std::string_view text) {
  return text.find("{date}") != std::string_view::npos || text.find("{today}") != std::string_view::npos ||
         text.find("{yesterday}") != std::string_view::npos;
}

std::string substitute_prompt_date(std::string_view text, const std::string& date) {
  const std::chrono::year_month_day day = day_of(date);
  const std::string yesterday = iso(std::chrono::year_month_day{std::chrono::sys_days{day} - std::chrono::days{1}});
  std::string out(text);
  replace_all(out, "{date}", date);
  replace_all(out, "{today}", date);
  replace_all(out, "{yesterday}", yesterday);
  return out;
}

}  // namespace kvsafe::orchestrator
