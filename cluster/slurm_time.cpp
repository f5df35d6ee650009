#include "cluster/slurm_time.h"

#include <fmt/format.h>

#include <charconv>
#include <vector>

namespace kvsafe::cluster {
namespace {

std::optional<std::int64_t> whole(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

}  // namespace

std::optional<std::int64_t> slurm_time_seconds(std::string_view time) {
  std::int64_t days = 0;
  std::string_view clock = time;
  const bool has_days = time.find('-') != std::string_view::npos;
  if (has_days) {
    const auto dash = time.find('-');
    const auto d = whole(time.substr(0, dash));
    if (!d) return std::nullopt;
    days = *d;
    clock = time.substr(dash + 1);
  }
  std::vector<std::optional<std::int64_t>> fields;
  for (const std::string_view part : split(clock, ':')) fields.push_back(whole(part));
  for (const auto& f : fields) {
    if (!f) return std::nullopt;
  }
  std::int64_t h = 0, m = 0, s = 0;
  if (has_days) {
    // D-H, D-H:M, D-H:M:S
    if (fields.size() > 3) return std::nullopt;
    h = *fields[0];
    if (fields.size() > 1) m = *fields[1];
    if (fields.size() > 2) s = *fields[2];
  } else if (fields.size() == 1) {
    m = *fields[0];  // M
  } else if (fields.size() == 2) {
    m = *fields[0];  // M:S
    s = *fields[1];
  } else if (fields.size() == 3) {
    h = *fields[0];
    m = *fields[1];
    s = *fields[2];
  } else {
    return std::nullopt;
  }
  return ((days * 24 + h) * 60 + m) * 60 + s;
}

std::string format_slurm_time(std::int64_t seconds) {
  const std::int64_t days = seconds / 86400, rest = seconds % 86400;
  const std::string clock = fmt::format("{:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60);
  return days > 0 ? fmt::format("{}-{}", days, clock) : clock;
}

}  // namespace kvsafe::cluster
