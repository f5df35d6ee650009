#include "text/tokenizer_normalizer.h"

#include <unicode/bytestream.h>
#include <unicode/casemap.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include <algorithm>

#include "common/error.h"
#include "text/unicode_utf8.h"

namespace kvsafe::engine {
namespace {

bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::string icu_normalize(std::string_view text, NormalizerStep::Kind kind) {
  // NOTE: ASCII is invariant under every normalization form; skipping ICU for it keeps
  // NFC-normalizing models (Qwen2) as fast as the others on English text.
  if (is_ascii(text)) return std::string(text);
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = nullptr;
  switch (kind) {
    case NormalizerStep::Kind::kNfc:
      normalizer = icu::Normalizer2::getNFCInstance(status);
      break;
    case NormalizerStep::Kind::kNfd:
      normalizer = icu::Normalizer2::getNFDInstance(status);
      break;
    case NormalizerStep::Kind::kNfkc:
      normalizer = icu::Normalizer2::getNFKCInstance(status);
      break;
    default:
      normalizer = icu::Normalizer2::getNFKDInstance(status);
      break;
  }
  KVSAFE_CHECK(U_SUCCESS(status) && normalizer != nullptr, "ICU normalizer unavailable: ", u_errorName(status));
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
  normalizer->normalizeUTF8(0, icu::StringPiece(text.data(), static_cast<int32_t>(text.size())), sink, nullptr, status);
  KVSAFE_CHECK(U_SUCCESS(status), "ICU normalization failed: ", u_errorName(status));
  return out;
}

std::string icu_lowercase(std::string_view text) {
  if (is_ascii(text)) {
    std::string out(text);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  }
  UErrorCode status = U_ZERO_ERROR;
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
  icu::CaseMap::utf8ToLower("", 0, icu::StringPiece(text.data(), static_cast<int32_t>(text.size())), sink, nullptr,
                            status);
  KVSAFE_CHECK(U_SUCCESS(status), "ICU lowercase failed: ", u_errorName(status));
  return out;
}

std::string strip(std::string_view text, bool left, bool right) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  if (left) {
    std::size_t offset = 0;
    while (offset < text.size()) {
      if (!is_unicode_whitespace(next_code_point(text, offset))) break;
      begin = offset;
    }
  }
  if (right) {
    // Walk forward remembering where the trailing whitespace run starts.
    std::size_t offset = begin;
    std::size_t run_start = text.size();
    while (offset < text.size()) {
      const std::size_t at = offset;
      const bool space = is_unicode_whitespace(next_code_point(text, offset));
      if (!space) {
        run_start = text.size();
      } else if (run_start == text.size()) {
        run_start = at;
      }
    }
    end = std::max(begin, run_start);
  }
  return std::string(text.substr(begin, end - begin));
}

}  // namespace

TokenizerNormalizer::TokenizerNormalizer(const std::vector<NormalizerStep>& steps, std::string_view source) {
  for (const NormalizerStep& step : steps) {
    Compiled compiled{.step = step, .regex = nullptr};
    if (step.kind == NormalizerStep::Kind::kReplace && step.pattern_is_regex) {
      compiled.regex = std::make_unique<TokenizerRegex>(step.pattern, source);
    }
    steps_.push_back(std::move(compiled));
  }
}

std::string TokenizerNormalizer::normalize(std::string_view input) const {
  std::string text(input);
  for (const Compiled& compiled : steps_) {
    const NormalizerStep& step = compiled.step;
    switch (step.kind) {
      case NormalizerStep::Kind::kNfc:
      case NormalizerStep::Kind::kNfd:
      case NormalizerStep::Kind::kNfkc:
      case NormalizerStep::Kind::kNfkd:
        text = icu_normalize(text, step.kind);
        break;
      case NormalizerStep::Kind::kLowercase:
        text = icu_lowercase(text);
        break;
      case NormalizerStep::Kind::kPrepend:
        // HF Prepend leaves an empty string empty.
        if (!text.empty()) text = step.content + text;
        break;
      case NormalizerStep::Kind::kReplace:
        if (compiled.regex) {
          std::string out;
          std::size_t from = 0;
          compiled.regex->for_each_match(text, [&](std::size_t begin, std::size_t end) {
            out.append(text, from, begin - from);
            out.append(step.content);
            from = end;
          });
          out.append(text, from);
          text = std::move(out);
        } else {
          text = replace_all(text, step.pattern, step.content);
        }
        break;
      case NormalizerStep::Kind::kStrip:
        text = strip(text, step.strip_left, step.strip_right);
        break;
    }
  }
  return text;
}

}  // namespace kvsafe::engine
