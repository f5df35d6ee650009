#include "text/unicode_utf8.h"

#include <array>

namespace kvsafe::engine {
namespace {

// Length of the valid sequence at text[i], or 0 when the bytes there are invalid. Also
// reports how many bytes form a valid *prefix* of a sequence (for lossy repair).
struct SequenceCheck {
  std::size_t valid_length = 0;   // > 0: a complete valid sequence of this length
  std::size_t prefix_length = 0;  // valid_length == 0: bytes that were a valid prefix
};

SequenceCheck check_sequence(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
  const std::uint8_t lead = byte(i);
  if (lead < 0x80) return {1, 0};
  std::size_t need = 0;
  std::uint8_t low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) low = 0xA0;   // NOTE: excludes overlong 3-byte forms
    if (lead == 0xED) high = 0x9F;  // NOTE: excludes UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) low = 0x90;   // overlong 4-byte forms
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return {0, 0};
  }
  std::size_t got = 1;
  for (std::size_t k = 1; k <= need; ++k) {
    if (i + k >= text.size()) return {0, got};
    const std::uint8_t b = byte(i + k);
    const std::uint8_t lo = k == 1 ? low : 0x80;
    const std::uint8_t hi = k == 1 ? high : 0xBF;
    if (b < lo || b > hi) return {0, got};
    ++got;
  }
  return {need + 1, 0};
}

struct ByteLevelTables {
  std::array<char32_t, 256> byte_to_char{};
  std::array<std::int16_t, 324> char_to_byte{};  // code points < 324 cover the alphabet

  ByteLevelTables() {
    char_to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      byte_to_char[static_cast<std::size_t>(b)] = cp;
      char_to_byte[cp] = static_cast<std::int16_t>(b);
    }
  }
};

const ByteLevelTables& byte_level_tables() {
  static const ByteLevelTables tables;
  return tables;
}

}  // namespace

int utf8_sequence_length(std::uint8_t lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF8) return 4;
  return 1;
}

std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (static_cast<std::uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const SequenceCheck check = check_sequence(text, i);
    if (check.valid_length == 0) return i;
    i += check.valid_length;
  }
  return std::nullopt;
}

char32_t next_code_point(std::string_view text, std::size_t& offset) {
  const auto lead = static_cast<std::uint8_t>(text[offset]);
  const int length = utf8_sequence_length(lead);
  char32_t cp = length == 1 ? lead : (lead & (0x7F >> length));
  for (int k = 1; k < length && offset + static_cast<std::size_t>(k) < text.size(); ++k) {
    cp = (cp << 6) | (static_cast<std::uint8_t>(text[offset + static_cast<std::size_t>(k)]) & 0x3F);
  }
  offset += static_cast<std::size_t>(length);
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    const SequenceCheck check = check_sequence(bytes, i);
    if (check.valid_length > 0) {
      out.append(bytes.substr(i, check.valid_length));
      i += check.valid_length;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal invalid subpart (Unicode 3.9, D93b)
      i += check.prefix_length > 0 ? check.prefix_length : 1;
    }
  }
  return out;
}

std::size_t incomplete_utf8_suffix(std::string_view bytes) {
  const std::size_t n = bytes.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const std::size_t start = n - back;
    const auto b = static_cast<std::uint8_t>(bytes[start]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    if (b < 0xC0) return 0;            // ASCII ends the search
    const SequenceCheck check = check_sequence(bytes, start);
    // A valid prefix that ran out of bytes is incomplete; anything else is either
    // complete or invalid, and an invalid sequence never becomes valid later.
    return check.valid_length == 0 && check.prefix_length == back ? back : 0;
  }
  return 0;
}

bool is_unicode_whitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

char32_t byte_level_char(std::uint8_t byte) {
  return byte_level_tables().byte_to_char[byte];
}

std::optional<std::string> byte_level_decode(std::string_view piece) {
  if (find_invalid_utf8(piece)) return std::nullopt;
  const ByteLevelTables& tables = byte_level_tables();
  std::string out;
  out.reserve(piece.size());
  std::size_t offset = 0;
  while (offset < piece.size()) {
    const char32_t cp = next_code_point(piece, offset);
    if (cp >= tables.char_to_byte.size() || tables.char_to_byte[cp] < 0) return std::nullopt;
    out += static_cast<char>(static_cast<std::uint8_t>(tables.char_to_byte[cp]));
  }
  return out;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) append_utf8(out, byte_level_char(static_cast<std::uint8_t>(c)));
  return out;
}

std::string replace_all(std::string_view text, std::string_view pattern, std::string_view content) {
  if (pattern.empty()) return std::string(text);
  std::string out;
  std::size_t from = 0;
  for (std::size_t at = text.find(pattern); at != std::string_view::npos; at = text.find(pattern, from)) {
    out.append(text.substr(from, at - from));
    out.append(content);
    from = at + pattern.size();
  }
  out.append(text.substr(from));
  return out;
}

}  // namespace kvsafe::engine
