#include "text/tokenizer_decoder.h"

#include <optional>

#include "common/error.h"
#include "text/unicode_utf8.h"

namespace kvsafe::engine {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xAB>" -> 0xAB (HF ByteFallback accepts either case of hex digit).
std::optional<std::uint8_t> byte_fallback_value(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return std::nullopt;
  const int high = hex_value(token[3]);
  const int low = hex_value(token[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<std::uint8_t>(high * 16 + low);
}

std::vector<std::string> byte_fallback(std::vector<std::string> tokens) {
  std::vector<std::string> out;
  std::string bytes;
  std::size_t byte_count = 0;
  const auto flush = [&] {
    if (byte_count == 0) return;
    if (!find_invalid_utf8(bytes)) {
      out.push_back(bytes);
    } else {
      // NOTE: HF emits one U+FFFD per byte of an invalid run (not per maximal subpart).
      for (std::size_t i = 0; i < byte_count; ++i) out.emplace_back("\xEF\xBF\xBD");
    }
    bytes.clear();
    byte_count = 0;
  };
  for (std::string& token : tokens) {
    if (const auto value = byte_fallback_value(token)) {
      bytes += static_cast<char>(*value);
      ++byte_count;
      continue;
    }
    flush();
    out.push_back(std::move(token));
  }
  flush();
  return out;
}

// Strips up to `start` leading and `stop` trailing copies of the character `content`.
std::string strip_token(const std::string& token, const std::string& content, int start, int stop) {
  std::vector<std::size_t> starts;  // byte offset of each code point
  for (std::size_t offset = 0; offset < token.size();) {
    starts.push_back(offset);
    next_code_point(token, offset);
  }
  const auto char_at = [&](std::size_t i) {
    const std::size_t end = i + 1 < starts.size() ? starts[i + 1] : token.size();
    return std::string_view(token).substr(starts[i], end - starts[i]);
  };
  std::size_t cut_begin = 0;
  for (std::size_t i = 0; i < starts.size() && i < static_cast<std::size_t>(start); ++i) {
    if (char_at(i) != content) break;
    cut_begin = i + 1;
  }
  std::size_t cut_end = starts.size();
  for (std::size_t i = 0; i < static_cast<std::size_t>(stop) && i < starts.size(); ++i) {
    const std::size_t index = starts.size() - i - 1;
    if (char_at(index) != content) break;
    cut_end = index;
  }
  if (cut_end <= cut_begin) return {};
  const std::size_t begin = cut_begin < starts.size() ? starts[cut_begin] : token.size();
  const std::size_t end = cut_end < starts.size() ? starts[cut_end] : token.size();
  return token.substr(begin, end - begin);
}

}  // namespace

void validate_decoder(const std::vector<DecoderStep>& steps, std::string_view source) {
  for (const DecoderStep& step : steps) {
    if (step.kind == DecoderStep::Kind::kStrip) {
      KVSAFE_CHECK(!step.content.empty() && utf8_sequence_length(static_cast<std::uint8_t>(step.content[0])) ==
                                                static_cast<int>(step.content.size()),
                   source, ": decoder Strip content must be one character, got '", step.content, "'");
      KVSAFE_CHECK(step.strip_start >= 0 && step.strip_stop >= 0, source, ": decoder Strip counts must be >= 0");
    }
    if (step.kind == DecoderStep::Kind::kMetaspace) {
      KVSAFE_CHECK(!step.replacement.empty(), source, ": decoder Metaspace replacement is empty");
    }
  }
}

std::string run_decoder(const std::vector<DecoderStep>& steps, std::vector<std::string> tokens) {
  if (steps.empty()) {
    std::string joined;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) joined += ' ';
      joined += tokens[i];
    }
    return utf8_lossy(joined);
  }
  for (const DecoderStep& step : steps) {
    switch (step.kind) {
      case DecoderStep::Kind::kByteLevel: {
        // HF ByteLevel: each token back to its bytes (as is when some character lies
        // outside the alphabet), then one lossy UTF-8 string for the whole list.
        std::string bytes;
        for (const std::string& token : tokens) {
          if (auto decoded = byte_level_decode(token)) {
            bytes += *decoded;
          } else {
            bytes += token;
          }
        }
        tokens.assign(1, utf8_lossy(bytes));
        break;
      }
      case DecoderStep::Kind::kReplace:
        for (std::string& token : tokens) token = replace_all(token, step.pattern, step.content);
        break;
      case DecoderStep::Kind::kByteFallback:
        tokens = byte_fallback(std::move(tokens));
        break;
      case DecoderStep::Kind::kFuse: {
        std::string fused;
        for (const std::string& token : tokens) fused += token;
        tokens.assign(1, std::move(fused));
        break;
      }
      case DecoderStep::Kind::kStrip:
        for (std::string& token : tokens) token = strip_token(token, step.content, step.strip_start, step.strip_stop);
        break;
      case DecoderStep::Kind::kMetaspace:
        // NOTE: HF drops *every* replacement character of the first token (not only a
        // leading one) unless the prepend scheme is "never"; kept for identical output.
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          const bool drop = i == 0 && step.prepend_scheme != PrependScheme::kNever;
          tokens[i] = replace_all(tokens[i], step.replacement, drop ? "" : " ");
        }
        break;
    }
  }
  std::string joined;
  for (const std::string& token : tokens) joined += token;
  return utf8_lossy(joined);
}

}  // namespace kvsafe::engine
