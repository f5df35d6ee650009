#include "cluster/shell_quote.h"

#include "common/error.h"

namespace kvsafe::cluster {
namespace {

bool safe_character(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '_':
    case '.':
    case '/':
    case ':':
    case '=':
    case '@':
    case '%':
    case '+':
    case ',':
    case '-':
      return true;
    default:
      return false;
  }
}

bool all_safe(std::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    if (!safe_character(c)) return false;
  }
  return true;
}

}  // namespace

std::string shell_quote(std::string_view word) {
  if (all_safe(word)) return std::string(word);
  std::string out = "'";
  for (const char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string sbatch_quote(std::string_view value) {
  KVSAFE_CHECK(value.find('\n') == std::string_view::npos && value.find('\r') == std::string_view::npos,
               "an #SBATCH value cannot hold a line break: ", std::string(value));
  if (all_safe(value)) return std::string(value);
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace kvsafe::cluster
