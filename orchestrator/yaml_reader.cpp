#include "orchestrator/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <regex>

namespace kvsafe::orchestrator::detail {
namespace {

bool is_core_bool(const std::string& s) {
  return s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE";
}

bool is_core_int(const std::string& s) {
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

bool is_core_float(const std::string& s) {
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  static const std::regex kSpecial(R"([-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))");
  return std::regex_match(s, kFloat) || std::regex_match(s, kSpecial);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const bool same =
          std::tolower(static_cast<unsigned char>(a[i - 1])) == std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string join_choices(std::span<const std::string_view> choices) {
  std::string out;
  for (std::string_view c : choices) {
    if (!out.empty()) out += '|';
    out += c;
  }
  return out;
}

}  // namespace

ScalarKind scalar_kind(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return ScalarKind::kNull;
  const std::string& tag = node.Tag();
  const std::string& s = node.Scalar();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return ScalarKind::kString;
  if (tag == "tag:yaml.org,2002:int") return ScalarKind::kInt;
  if (tag == "tag:yaml.org,2002:float") return ScalarKind::kFloat;
  if (tag == "tag:yaml.org,2002:bool") return ScalarKind::kBool;
  if (is_core_bool(s)) return ScalarKind::kBool;
  if (is_core_int(s)) return ScalarKind::kInt;
  if (is_core_float(s)) return ScalarKind::kFloat;
  return ScalarKind::kString;
}

std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  const std::string& s = node.Scalar();
  switch (scalar_kind(node)) {
    case ScalarKind::kBool:
      return "a boolean (" + s + ")";
    case ScalarKind::kInt:
      return "an integer (" + s + ")";
    case ScalarKind::kFloat:
      return "a number (" + s + ")";
    case ScalarKind::kString:
      return "a string (\"" + s + "\")";
    case ScalarKind::kNull:
      break;
  }
  return "null";
}

SourceLocation location_of(const YAML::Node& node, SourceLocation fallback) {
  // NOTE: yaml-cpp gives a null value (`key:` with nothing after it) the position of the
  // next token, often on the next line; the key's position is what a user expects.
  if (!node.IsDefined() || node.IsNull()) return fallback;
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0 || mark.column < 0) return fallback;
  return {mark.line + 1, mark.column + 1};
}

std::string child(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out(path);
  out += '.';
  out += key;
  return out;
}

std::string element(std::string_view path, std::size_t index) {
  return std::string(path) + '[' + std::to_string(index) + ']';
}

std::string nearest(std::string_view word, std::span<const std::string_view> candidates) {
  std::string best;
  std::size_t best_distance = std::string::npos;
  for (std::string_view c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(c);
    }
  }
  // Close enough to be a typo: at most a third of the word, but always allow 2 edits.
  const std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  return best_distance <= limit && best_distance < word.size() ? best : std::string();
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
  const std::string best = nearest(word, candidates);
  return best.empty() ? std::string() : " (did you mean `" + best + "`?)";
}

const MapEntry* MapView::find(std::string_view key) const {
  for (const MapEntry& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

void YamlReader::error(SourceLocation where, const std::string& path, std::string message) {
  diagnostics_->add_error(file_, where.line, where.column, path, std::move(message));
}

void YamlReader::warning(SourceLocation where, const std::string& path, std::string message) {
  diagnostics_->add_warning(file_, where.line, where.column, path, std::move(message));
}

std::optional<MapView> YamlReader::map(const YAML::Node& node, SourceLocation where, const std::string& path,
                                       std::span<const std::string_view> known_keys) {
  if (!node.IsMap()) {
    error(where, path, "expected a mapping, got " + describe(node));
    return std::nullopt;
  }
  MapView view{location_of(node, where), path, {}};
  for (auto it = node.begin(); it != node.end(); ++it) {
    const SourceLocation key_where = location_of(it->first, view.where);
    if (!it->first.IsScalar()) {
      error(key_where, path, "keys must be plain names, got " + describe(it->first));
      continue;
    }
    const std::string key = it->first.Scalar();
    const std::string key_path = child(path, key);
    if (const MapEntry* first = view.find(key)) {
      error(key_where, key_path,
            "duplicate key `" + key + "` (first given at line " + std::to_string(first->key_where.line) + ")");
      continue;
    }
    if (std::find(known_keys.begin(), known_keys.end(), key) == known_keys.end()) {
      error(key_where, key_path, "unknown key `" + key + "`" + did_you_mean(key, known_keys));
      continue;
    }
    view.entries.push_back({key, it->second, key_where, location_of(it->second, key_where), key_path});
  }
  return view;
}

bool YamlReader::require(const MapView& view, std::string_view key) {
  if (view.find(key) != nullptr) return true;
  error(view.where, child(view.path, key), "missing required key `" + std::string(key) + "`");
  return false;
}

std::optional<std::int64_t> YamlReader::integer(const YAML::Node& node, SourceLocation where, const std::string& path,
                                                std::int64_t lo, std::int64_t hi) {
  if (!node.IsScalar() || scalar_kind(node) != ScalarKind::kInt) {
    error(where, path, "expected an integer, got " + describe(node));
    return std::nullopt;
  }
  std::string text = node.Scalar();
  if (!text.empty() && text[0] == '+') text.erase(0, 1);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    error(where, path, "integer out of range: " + node.Scalar());
    return std::nullopt;
  }
  if (value < lo || value > hi) {
    std::string range;
    if (hi == std::numeric_limits<std::int64_t>::max()) {
      range = "must be >= " + std::to_string(lo);
    } else {
      range = "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
    }
    error(where, path, range + ", got " + std::to_string(value));
    return std::nullopt;
  }
  return value;
}

std::optional<double> YamlReader::number(const YAML::Node& node, SourceLocation where, const std::string& path) {
  const ScalarKind kind = node.IsScalar() ? scalar_kind(node) : ScalarKind::kNull;
  if (!node.IsScalar() || (kind != ScalarKind::kInt && kind != ScalarKind::kFloat)) {
    error(where, path, "expected a number, got " + describe(node));
    return std::nullopt;
  }
  std::string text = node.Scalar();
  double value = 0;
  if (text.find("inf") != std::string::npos || text.find("Inf") != std::string::npos ||
      text.find("INF") != std::string::npos) {
    value = text[0] == '-' ? -HUGE_VAL : HUGE_VAL;
  } else if (text.find("nan") != std::string::npos || text.find("NaN") != std::string::npos ||
             text.find("NAN") != std::string::npos) {
    error(where, path, "expected a number, got NaN");
    return std::nullopt;
  } else {
    if (!text.empty() && text[0] == '+') text.erase(0, 1);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
      error(where, path, "number out of range: " + node.Scalar());
      return std::nullopt;
    }
  }
  if (!std::isfinite(value)) {
    error(where, path, "expected a finite number, got " + node.Scalar());
    return std::nullopt;
  }
  // Typed identity: -0.0 and 0.0 are the same setting.
  return value == 0.0 ? 0.0 : value;
}

std::optional<bool> YamlReader::boolean(const YAML::Node& node, SourceLocation where, const std::string& path) {
  if (!node.IsScalar() || scalar_kind(node) != ScalarKind::kBool) {
    error(where, path, "expected true or false, got " + describe(node));
    return std::nullopt;
  }
  const char c = node.Scalar()[0];
  return c == 't' || c == 'T';
}

std::optional<std::string> YamlReader::string(const YAML::Node& node, SourceLocation where, const std::string& path,
                                              bool allow_plain_scalars) {
  if (!node.IsScalar()) {
    error(where, path, "expected a string, got " + describe(node));
    return std::nullopt;
  }
  if (!allow_plain_scalars && scalar_kind(node) != ScalarKind::kString) {
    error(where, path, "expected a string, got " + describe(node));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<std::string> YamlReader::choice(const YAML::Node& node, SourceLocation where, const std::string& path,
                                              std::span<const std::string_view> choices) {
  if (!node.IsScalar() || scalar_kind(node) != ScalarKind::kString) {
    error(where, path, "expected one of " + join_choices(choices) + ", got " + describe(node));
    return std::nullopt;
  }
  const std::string& value = node.Scalar();
  if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
    error(where, path,
          "invalid value `" + value + "`: expected one of " + join_choices(choices) + did_you_mean(value, choices));
    return std::nullopt;
  }
  return value;
}

}  // namespace kvsafe::orchestrator::detail
