#include "text/python_text.h"

#include <array>
#include <utility>

namespace kvsafe::text {
namespace {

// The byte length of the whitespace character starting at text[i], or 0.
std::size_t space_at(std::string_view text, std::size_t i) {
  const auto b = static_cast<unsigned char>(text[i]);
  if (b == ' ' || (b >= 0x09 && b <= 0x0d) || (b >= 0x1c && b <= 0x1f)) return 1;
  const auto at = [&](std::size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0; };
  if (b == 0xc2 && (at(1) == 0x85 || at(1) == 0xa0)) return 2;  // U+0085, U+00A0
  if (b == 0xe1 && at(1) == 0x9a && at(2) == 0x80) return 3;    // U+1680
  if (b == 0xe2 && at(1) == 0x80) {
    const unsigned c = at(2);
    if ((c >= 0x80 && c <= 0x8a) || c == 0xa8 || c == 0xa9 || c == 0xaf) return 3;  // U+2000-200A, 2028, 2029, 202F
  }
  if (b == 0xe2 && at(1) == 0x81 && at(2) == 0x9f) return 3;  // U+205F
  if (b == 0xe3 && at(1) == 0x80 && at(2) == 0x80) return 3;  // U+3000
  return 0;
}

// The byte length of the whitespace character ending at text[end - 1], or 0.
std::size_t space_before(std::string_view text, std::size_t end) {
  for (std::size_t length = 1; length <= 3 && length <= end; ++length) {
    if (space_at(text, end - length) == length) return length;
  }
  return 0;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  std::size_t start = 0;
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, start)) {
    out.append(text, start, at - start);
    out += to;
    start = at + from.size();
  }
  out.append(text, start);
  text = std::move(out);
}

}  // namespace

std::string python_strip(std::string_view text) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t n = space_at(text, begin);
    if (n == 0) break;
    begin += n;
  }
  std::size_t end = text.size();
  while (end > begin) {
    const std::size_t n = space_before(text, end);
    if (n == 0) break;
    end -= n;
  }
  return std::string(text.substr(begin, end - begin));
}

std::string clean_up_tokenization(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kReplacements = {{
      {" .", "."},
      {" ?", "?"},
      {" !", "!"},
      {" ,", ","},
      {" ' ", "'"},
      {" n't", "n't"},
      {" 'm", "'m"},
      {" 's", "'s"},
      {" 've", "'ve"},
      {" 're", "'re"},
  }};
  std::string out(text);
  for (const auto& [from, to] : kReplacements) replace_all(out, from, to);
  return out;
}

}  // namespace kvsafe::text
