#pragma once
// Internal to orchestrator/: typed, position-aware reading of yaml-cpp nodes for the grid
// parser. Every reader reports what is wrong to a Diagnostics and returns std::nullopt,
// so the caller keeps going and the user sees all problems at once.
//
// NOTE: yaml-cpp 0.7 resolves only nulls itself; a plain scalar's type is decided here
// with the YAML 1.2 core schema (true/false, decimal integers, decimal floats, .inf/.nan).
// A quoted scalar is always a string, so `bits: "4"` is a type error, never the number 4.
// yaml-cpp does not report duplicate keys either (it keeps both): map() does.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "orchestrator/grid_diagnostics.h"

namespace kvsafe::orchestrator::detail {

enum class ScalarKind { kNull, kBool, kInt, kFloat, kString };

// Kind of a scalar or null node under the core schema (quoted = string).
ScalarKind scalar_kind(const YAML::Node& node);
// "a mapping", "a list", "null", "a boolean (yes)", "a string (\"4\")", ...: for messages.
std::string describe(const YAML::Node& node);

// Position of a node, 1-based; `fallback` when yaml-cpp has none (null nodes).
SourceLocation location_of(const YAML::Node& node, SourceLocation fallback);

// Key paths: child("kv_cache[2]", "bits") == "kv_cache[2].bits"; element("bits", 3) == "bits[3]".
std::string child(std::string_view path, std::string_view key);
std::string element(std::string_view path, std::size_t index);

// Nearest candidate by edit distance, or "" when none is close enough to suggest.
std::string nearest(std::string_view word, std::span<const std::string_view> candidates);
// " (did you mean `x`?)" or "".
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);

struct MapEntry {
  std::string key;
  YAML::Node value;
  SourceLocation key_where;  // where the key is written
  SourceLocation where;      // where the value is written (the key's position for a null value)
  std::string path;          // key path of the value
};

// A mapping whose keys were checked: scalar, unique, known.
struct MapView {
  SourceLocation where;
  std::string path;
  std::vector<MapEntry> entries;  // first occurrence of each key, in document order

  const MapEntry* find(std::string_view key) const;
};

class YamlReader {
 public:
  YamlReader(std::string file, Diagnostics* diagnostics) : file_(std::move(file)), diagnostics_(diagnostics) {}

  const std::string& file() const { return file_; }
  Diagnostics& diagnostics() { return *diagnostics_; }
  void error(SourceLocation where, const std::string& path, std::string message);
  void warning(SourceLocation where, const std::string& path, std::string message);

  // A mapping with only `known_keys`: reports a non-mapping (as "expected a mapping"),
  // duplicate keys (the later one) and unknown keys (with a suggestion); unknown and
  // duplicate entries are left out of the view. nullopt when the node is not a mapping.
  std::optional<MapView> map(const YAML::Node& node, SourceLocation where, const std::string& path,
                             std::span<const std::string_view> known_keys);
  // Reports `key` missing from `view` when it is required.
  bool require(const MapView& view, std::string_view key);

  std::optional<std::int64_t> integer(const YAML::Node& node, SourceLocation where, const std::string& path,
                                      std::int64_t lo = std::numeric_limits<std::int64_t>::min(),
                                      std::int64_t hi = std::numeric_limits<std::int64_t>::max());
  // Integers are accepted where a number is expected (`temperature: 0` == `0.0`).
  std::optional<double> number(const YAML::Node& node, SourceLocation where, const std::string& path);
  std::optional<bool> boolean(const YAML::Node& node, SourceLocation where, const std::string& path);
  // Any non-null scalar written as a string; a plain number or boolean is a type error
  // unless `allow_plain_scalars` (free text like a description or a SLURM time).
  std::optional<std::string> string(const YAML::Node& node, SourceLocation where, const std::string& path,
                                    bool allow_plain_scalars = true);
  // A string that must be one of `choices`; suggests the nearest on a miss.
  std::optional<std::string> choice(const YAML::Node& node, SourceLocation where, const std::string& path,
                                    std::span<const std::string_view> choices);

  // The same readers applied to a map entry.
  std::optional<std::int64_t> integer(const MapEntry& e, std::int64_t lo = std::numeric_limits<std::int64_t>::min(),
                                      std::int64_t hi = std::numeric_limits<std::int64_t>::max()) {
    return integer(e.value, e.where, e.path, lo, hi);
  }
  std::optional<double> number(const MapEntry& e) { return number(e.value, e.where, e.path); }
  std::optional<bool> boolean(const MapEntry& e) { return boolean(e.value, e.where, e.path); }
  std::optional<std::string> string(const MapEntry& e, bool allow_plain_scalars = true) {
    return string(e.value, e.where, e.path, allow_plain_scalars);
  }
  std::optional<std::string> choice(const MapEntry& e, std::span<const std::string_view> choices) {
    return choice(e.value, e.where, e.path, choices);
  }

 private:
  std::string file_;
  Diagnostics* diagnostics_;
};

}  // namespace kvsafe::orchestrator::detail
