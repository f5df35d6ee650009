// Language detection for IFEval's checks (eval/ifeval_instructions.h): CLD2, Google's Compact
// Language Detector 2 (Debian libcld2), with its codes mapped to langdetect's; and the
// script-based stand-in used when CLD2 finds no language: the dominant script of a text's
// letters decides which langdetect codes it can be (Latin script reads "unknown").

#include <cstdio>  // before CLD2's header, which uses FILE without including it

#include <cld2/public/compact_lang_det.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "eval/ifeval_instructions.h"
#include "eval/ifeval_text.h"

namespace kvsafe::eval::ifeval {
namespace {

enum class Script {
  kLatin,
  kGreek,
  kCyrillic,
  kHebrew,
  kArabic,
  kDevanagari,
  kBengali,
  kGurmukhi,
  kGujarati,
  kOriya,
  kTamil,
  kTelugu,
  kKannada,
  kMalayalam,
  kThai,
  kHangul,
  kKana,
  kHan,
  kOther,
  kCount
};

struct ScriptRange {
  char32_t first;
  char32_t last;
  Script script;
};

// Unicode blocks (Unicode 15 block ranges) of the scripts langdetect's profiles cover.
constexpr std::array<ScriptRange, 33> kScriptRanges{{
    {0x0041, 0x024F, Script::kLatin},    {0x0370, 0x03FF, Script::kGreek},
    {0x0400, 0x052F, Script::kCyrillic}, {0x0590, 0x05FF, Script::kHebrew},
    {0x0600, 0x06FF, Script::kArabic},   {0x0750, 0x077F, Script::kArabic},
    {0x08A0, 0x08FF, Script::kArabic},   {0x0900, 0x097F, Script::kDevanagari},
    {0x0980, 0x09FF, Script::kBengali},  {0x0A00, 0x0A7F, Script::kGurmukhi},
    {0x0A80, 0x0AFF, Script::kGujarati}, {0x0B00, 0x0B7F, Script::kOriya},
    {0x0B80, 0x0BFF, Script::kTamil},    {0x0C00, 0x0C7F, Script::kTelugu},
    {0x0C80, 0x0CFF, Script::kKannada},  {0x0D00, 0x0D7F, Script::kMalayalam},
    {0x0E00, 0x0E7F, Script::kThai},     {0x1100, 0x11FF, Script::kHangul},
    {0x1C80, 0x1C8F, Script::kCyrillic}, {0x1E00, 0x1EFF, Script::kLatin},
    {0x1F00, 0x1FFF, Script::kGreek},    {0x2C60, 0x2C7F, Script::kLatin},
    {0x2DE0, 0x2DFF, Script::kCyrillic}, {0x3040, 0x30FF, Script::kKana},
    {0x3130, 0x318F, Script::kHangul},   {0x31F0, 0x31FF, Script::kKana},
    {0x3400, 0x4DBF, Script::kHan},      {0x4E00, 0x9FFF, Script::kHan},
    {0xA640, 0xA69F, Script::kCyrillic}, {0xA720, 0xA7FF, Script::kLatin},
    {0xAC00, 0xD7AF, Script::kHangul},   {0xF900, 0xFAFF, Script::kHan},
    {0xFB1D, 0xFDFF, Script::kArabic},  // Hebrew presentation forms share this span: rare
}};

Script script_of(char32_t c) {
  for (const ScriptRange& r : kScriptRanges) {
    if (c >= r.first && c <= r.last) return r.script;
  }
  if (c >= 0xFF21 && c <= 0xFF5A) return Script::kLatin;  // full-width Latin letters
  if (c >= 0x20000 && c <= 0x2FFFF) return Script::kHan;
  return Script::kOther;
}

// CLD2's code -> langdetect's, where they differ (langdetect names Chinese by script, Hebrew
// by its current code, Norwegian Bokmal as "no").
std::string langdetect_code(std::string_view cld2) {
  if (cld2 == "iw") return "he";
  if (cld2 == "zh") return "zh-cn";
  if (cld2 == "zh-Hant") return "zh-tw";
  if (cld2 == "nb") return "no";
  return std::string(cld2);
}

}  // namespace

std::optional<std::string> detected_language(std::string_view text) {
  // The extended call also names single-script languages; plain text (no HTML tags skipped).
  // NOTE: CLD2 reads its input as interchange-valid UTF-8; IFEval answers are decoded text, and
  // the codec writes U+FFFD for bad bytes, so the bytes given here are valid.
  CLD2::Language top3[3];
  int percent3[3];
  int text_bytes = 0;
  bool reliable = false;
  const CLD2::Language language = CLD2::ExtDetectLanguageSummary(
      text.data(), static_cast<int>(text.size()), /*is_plain_text=*/true, top3, percent3, &text_bytes, &reliable);
  if (language == CLD2::UNKNOWN_LANGUAGE) return std::nullopt;
  return langdetect_code(CLD2::LanguageCode(language));
}

std::vector<std::string> language_candidates(std::string_view text) {
  std::array<std::int64_t, static_cast<std::size_t>(Script::kCount)> counts{};
  for (const char32_t c : ifeval_text::decode_utf8(text)) {
    // Letters and marks only: \w without digits and '_', plus the Indic vowel signs (marks
    // are not \w in Python, but they belong to their script).
    const bool letter = (ifeval_text::is_word(c) && !ifeval_text::is_digit(c) && c != U'_') ||
                        (c >= 0x0900 && c <= 0x0DFF) || (c >= 0x0E00 && c <= 0x0E7F);
    if (!letter || (c < 0x80 && !((c | 0x20) >= U'a' && (c | 0x20) <= U'z'))) continue;
    ++counts[static_cast<std::size_t>(script_of(c))];
  }
  const auto best = std::max_element(counts.begin(), counts.end());
  if (*best == 0) return {};
  const auto kana = counts[static_cast<std::size_t>(Script::kKana)];
  auto script = static_cast<Script>(best - counts.begin());
  if (script == Script::kHan && kana > 0) script = Script::kKana;  // kanji with kana: Japanese
  switch (script) {
    case Script::kGreek:
      return {"el"};
    case Script::kCyrillic:
      return {"bg", "mk", "ru", "uk"};
    case Script::kHebrew:
      return {"he"};
    case Script::kArabic:
      return {"ar", "fa", "ur"};
    case Script::kDevanagari:
      return {"hi", "mr", "ne"};
    case Script::kBengali:
      return {"bn"};
    case Script::kGurmukhi:
      return {"pa"};
    case Script::kGujarati:
      return {"gu"};
    case Script::kTamil:
      return {"ta"};
    case Script::kTelugu:
      return {"te"};
    case Script::kKannada:
      return {"kn"};
    case Script::kMalayalam:
      return {"ml"};
    case Script::kThai:
      return {"th"};
    case Script::kHangul:
      return {"ko"};
    case Script::kKana:
      return {"ja"};
    case Script::kHan:
      return {"zh-cn", "zh-tw"};
    case Script::kLatin:
      return {"unknown"};
    default:
      return {"other"};  // a script langdetect has no profile for (Oriya, ...)
  }
}

}  // namespace kvsafe::eval::ifeval
