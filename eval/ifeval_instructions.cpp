// The IFEval checkers, one function per instruction type, and the strict/loose evaluation
// (eval/ifeval_instructions.h). Each checker states the rule it implements; the rules are the
// reference's (shared/reference/ifeval_oracle/instructions.py), written anew on code points.

#include "eval/ifeval_instructions.h"

#include <algorithm>
#include <array>
#include <functional>
#include <string>

#include "common/error.h"
#include "eval/ifeval_text.h"

namespace kvsafe::eval::ifeval {
namespace {

namespace text = ifeval_text;
using Checker = bool (*)(const Instruction&, std::u32string_view);

// ---- kwargs ------------------------------------------------------------------------------

const nlohmann::json& kwarg(const Instruction& in, const char* key) {
  const auto it = in.kwargs.find(key);
  KVSAFE_CHECK(in.kwargs.is_object() && it != in.kwargs.end() && !it->is_null(), "IFEval instruction '", in.id,
               "': kwarg '", key, "' is missing (the reference would draw it at random)");
  return *it;
}

std::int64_t kwarg_count(const Instruction& in, const char* key) {
  const nlohmann::json& value = kwarg(in, key);
  KVSAFE_CHECK(value.is_number_integer() && value.get<std::int64_t>() >= 0, "IFEval instruction '", in.id, "': kwarg '",
               key, "' must be a non-negative integer, got ", value.dump());
  return value.get<std::int64_t>();
}

std::u32string kwarg_text(const Instruction& in, const char* key) {
  const nlohmann::json& value = kwarg(in, key);
  KVSAFE_CHECK(value.is_string(), "IFEval instruction '", in.id, "': kwarg '", key, "' must be a string, got ",
               value.dump());
  return text::decode_utf8(value.get<std::string>());
}

// A value the reference uses as a regex: literal here, so metacharacters are refused.
std::u32string kwarg_literal(const Instruction& in, const char* key, const nlohmann::json& value) {
  KVSAFE_CHECK(value.is_string(), "IFEval instruction '", in.id, "': kwarg '", key, "' must hold strings, got ",
               value.dump());
  const std::string s = value.get<std::string>();
  KVSAFE_CHECK(!s.empty() && s.find_first_of(".^$*+?{}[]\\|()") == std::string::npos, "IFEval instruction '", in.id,
               "': kwarg '", key, "' value '", s,
               "' is empty or has a regex metacharacter (only literal text is supported)");
  return text::decode_utf8(s);
}

std::vector<std::u32string> kwarg_literals(const Instruction& in, const char* key) {
  const nlohmann::json& value = kwarg(in, key);
  KVSAFE_CHECK(value.is_array() && !value.empty(), "IFEval instruction '", in.id, "': kwarg '", key,
               "' must be a non-empty list, got ", value.dump());
  std::vector<std::u32string> out;
  for (const auto& item : value) out.push_back(kwarg_literal(in, key, item));
  return out;
}

// "less than" -> true, "at least" -> false.
bool kwarg_less_than(const Instruction& in, const char* key) {
  const nlohmann::json& value = kwarg(in, key);
  const bool less = value == "less than";
  KVSAFE_CHECK(less || value == "at least", "IFEval instruction '", in.id, "': kwarg '", key,
               "' must be \"less than\" or \"at least\", got ", value.dump());
  return less;
}

bool compare(bool less_than, std::int64_t actual, std::int64_t threshold) {
  return less_than ? actual < threshold : actual >= threshold;
}

// ---- matching helpers --------------------------------------------------------------------

// Python re.IGNORECASE on literal text: code points compared by their lower case.
char32_t fold(char32_t c) {
  const std::u32string one(1, c);
  const std::u32string low = text::to_lower(one);
  return low.size() == 1 ? low[0] : c;
}

bool matches_folded(std::u32string_view hay, std::size_t at, std::u32string_view needle) {
  if (at + needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i < needle.size(); ++i) {
    if (fold(hay[at + i]) != fold(needle[i])) return false;
  }
  return true;
}

// Non-overlapping case-insensitive occurrences, left to right (re.findall).
std::int64_t count_folded(std::u32string_view hay, std::u32string_view needle) {
  std::int64_t count = 0;
  for (std::size_t at = 0; at + needle.size() <= hay.size();) {
    if (matches_folded(hay, at, needle)) {
      ++count;
      at += needle.size();
    } else {
      ++at;
    }
  }
  return count;
}

bool has_line_start(std::u32string_view s, std::size_t at) {
  return at == 0 || s[at - 1] == U'\n';
}

std::size_t line_end(std::u32string_view s, std::size_t from) {
  const std::size_t nl = s.find(U'\n', from);
  return nl == std::u32string_view::npos ? s.size() : nl;
}

// ---- checkers ----------------------------------------------------------------------------

// The response's language is the target (CLD2, else the script fallback; see the header).
bool check_response_language(const Instruction& in, std::u32string_view value) {
  static constexpr std::array<std::string_view, 10> kLatin{"en", "es", "pt", "fr", "de", "it", "pl", "vi", "sw", "fi"};
  static constexpr std::array<std::string_view, 20> kOther{"ar", "hi", "ru", "ja", "bn", "uk", "th", "ur", "ta", "te",
                                                           "bg", "ko", "he", "fa", "ne", "kn", "mr", "gu", "pa", "ml"};
  const std::string target = text::encode_utf8(kwarg_text(in, "language"));
  const bool latin = std::ranges::find(kLatin, target) != kLatin.end();
  KVSAFE_CHECK(latin || std::ranges::find(kOther, target) != kOther.end(), "IFEval instruction '", in.id,
               "': kwarg 'language' '", target, "' is not one of the reference's language codes");
  const std::string utf8 = text::encode_utf8(value);
  const auto candidates = language_candidates(utf8);
  if (candidates.empty()) return true;  // no letters: langdetect fails, the reference counts it followed
  if (const auto detected = detected_language(utf8)) return *detected == target;
  if (candidates.front() == "unknown") return latin;
  return std::ranges::find(candidates, target) != candidates.end();
}

// langdetect(value) == "en", with the reference's "no letters: followed".
bool is_english(std::u32string_view value) {
  const std::string utf8 = text::encode_utf8(value);
  const auto candidates = language_candidates(utf8);
  if (candidates.empty()) return true;
  if (const auto detected = detected_language(utf8)) return *detected == "en";
  return candidates.front() == "unknown";
}

bool check_number_sentences(const Instruction& in, std::u32string_view value) {
  return compare(kwarg_less_than(in, "relation"), text::count_sentences(value), kwarg_count(in, "num_sentences"));
}

// At least N "[...]" spans (a '[' to the nearest ']' on the same line).
bool check_placeholders(const Instruction& in, std::u32string_view value) {
  std::int64_t count = 0;
  for (std::size_t at = 0; at < value.size(); ++at) {
    if (value[at] != U'[') continue;
    const std::size_t close = value.find(U']', at);
    if (close != std::u32string_view::npos && close < line_end(value, at)) {
      ++count;
      at = close;
    }
  }
  return count >= kwarg_count(in, "num_placeholders");
}

// The number of matches of ^\s*<marker><rest>.*$ (MULTILINE): a line start, whitespace
// (which may run over empty lines), the marker, then for '*' one character that is not '*'.
std::int64_t count_bullets(std::u32string_view s, char32_t marker) {
  std::int64_t count = 0;
  for (std::size_t at = 0; at <= s.size(); ++at) {
    if (!has_line_start(s, at)) continue;
    std::size_t i = at;
    while (i < s.size() && text::is_space(s[i])) ++i;
    if (i >= s.size() || s[i] != marker) continue;
    ++i;
    if (marker == U'*') {
      if (i >= s.size() || s[i] == U'*') continue;
      ++i;  // [^*] also takes a newline
    }
    ++count;
    at = line_end(s, i);  // .*$ ends before the next newline
  }
  return count;
}

bool check_bullet_lists(const Instruction& in, std::u32string_view value) {
  return count_bullets(value, U'*') + count_bullets(value, U'-') == kwarg_count(in, "num_bullets");
}

bool check_constrained_response(const Instruction&, std::u32string_view value) {
  const std::u32string_view stripped = text::strip(value);
  for (const std::u32string_view option : {U"My answer is yes.", U"My answer is no.", U"My answer is maybe."}) {
    if (stripped.find(option) != std::u32string_view::npos) return true;
  }
  return false;
}

// *text* spans without newlines or inner '*' (non-empty inside), plus **text** spans counted again.
bool check_highlights(const Instruction& in, std::u32string_view value) {
  std::int64_t count = 0;
  for (std::size_t at = 0; at < value.size(); ++at) {
    if (value[at] != U'*') continue;
    std::size_t j = at + 1;
    while (j < value.size() && value[j] != U'*' && value[j] != U'\n') ++j;
    if (j < value.size() && value[j] == U'*') {
      if (!text::strip(value.substr(at + 1, j - at - 1)).empty()) ++count;
      at = j;
    }
  }
  for (std::size_t at = 0; at + 1 < value.size(); ++at) {
    if (value[at] != U'*' || value[at + 1] != U'*') continue;
    std::size_t j = at + 2;
    while (j < value.size() && value[j] != U'*' && value[j] != U'\n') ++j;
    if (j + 1 < value.size() && value[j] == U'*' && value[j + 1] == U'*') {
      if (!text::strip(value.substr(at + 2, j - at - 2)).empty()) ++count;
      at = j + 1;
    }
  }
  return count >= kwarg_count(in, "num_highlights");
}

// At least N occurrences of "<splitter>[one whitespace]<digits>" (case-sensitive).
bool check_sections(const Instruction& in, std::u32string_view value) {
  const std::u32string splitter = kwarg_literal(in, "section_spliter", kwarg(in, "section_spliter"));
  const std::u32string_view sep = text::strip(splitter);
  std::int64_t count = 0;
  std::size_t at = 0;
  while ((at = value.find(sep, at)) != std::u32string_view::npos) {
    std::size_t i = at + sep.size();
    if (i < value.size() && text::is_space(value[i]) && i + 1 < value.size() && text::is_digit(value[i + 1])) ++i;
    if (i < value.size() && text::is_digit(value[i])) {
      while (i < value.size() && text::is_digit(value[i])) ++i;
      ++count;
      at = i;
    } else {
      ++at;
    }
  }
  return count >= kwarg_count(in, "num_sections");
}

// Exactly N paragraphs separated by "***"; an empty paragraph other than first/last fails.
bool check_paragraphs(const Instruction& in, std::u32string_view value) {
  const auto pieces = text::split_literal(value, U"***");
  auto count = static_cast<std::int64_t>(pieces.size());
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (!text::strip(pieces[i]).empty()) continue;
    if (i != 0 && i + 1 != pieces.size()) return false;
    --count;
  }
  return count == kwarg_count(in, "num_paragraphs");
}

// The lower-cased response contains the marker ("p.p.s" and "p.s." allow one whitespace
// after each period).
bool check_postscript(const Instruction& in, std::u32string_view value) {
  const std::u32string marker(text::strip(kwarg_text(in, "postscript_marker")));
  const std::u32string low = text::to_lower(value);
  // `pattern` is literal except ' ', which stands for one optional whitespace character.
  auto search = [&](std::u32string_view pattern) {
    for (std::size_t at = 0; at < low.size(); ++at) {
      std::size_t i = at;
      bool ok = true;
      for (const char32_t p : pattern) {
        if (p == U' ') {
          if (i < low.size() && text::is_space(low[i])) ++i;
        } else if (i < low.size() && low[i] == p) {
          ++i;
        } else {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  };
  if (marker == U"P.P.S") return search(U"p. p. s");
  if (marker == U"P.S.") return search(U"p. s.");
  const std::u32string literal = kwarg_literal(in, "postscript_marker", kwarg(in, "postscript_marker"));
  return low.find(text::to_lower(text::strip(literal))) != std::u32string::npos;
}

bool check_keywords_exist(const Instruction& in, std::u32string_view value) {
  for (const auto& keyword : kwarg_literals(in, "keywords")) {
    if (count_folded(value, keyword) == 0) return false;
  }
  return true;
}

bool check_keyword_frequency(const Instruction& in, std::u32string_view value) {
  const std::u32string keyword = kwarg_literal(in, "keyword", kwarg(in, "keyword"));
  return compare(kwarg_less_than(in, "relation"), count_folded(value, text::strip(keyword)),
                 kwarg_count(in, "frequency"));
}

bool check_number_words(const Instruction& in, std::u32string_view value) {
  return compare(kwarg_less_than(in, "relation"), text::count_words(value), kwarg_count(in, "num_words"));
}

// The response, less a ```json / ```Json / ```JSON / ``` fence, parses as JSON.
bool check_json(const Instruction&, std::u32string_view value) {
  std::u32string_view v = text::strip(value);
  for (const std::u32string_view prefix : {U"```json", U"```Json", U"```JSON", U"```"}) {
    if (v.starts_with(prefix)) v.remove_prefix(prefix.size());
  }
  if (v.ends_with(U"```")) v.remove_suffix(3);
  v = text::strip(v);
  return nlohmann::json::accept(text::encode_utf8(v));
}

// N paragraphs split by "\n\n" (blank ones not counted); paragraph n's first word, quotes
// stripped from its front and cut at . , ? ! ' ", lower-cased, is the given word.
bool check_nth_paragraph_first_word(const Instruction& in, std::u32string_view value) {
  const std::int64_t num = kwarg_count(in, "num_paragraphs");
  const std::int64_t nth = kwarg_count(in, "nth_paragraph");
  KVSAFE_CHECK(nth >= 1 && nth <= num, "IFEval instruction '", in.id, "': kwarg 'nth_paragraph' ", nth,
               " must be 1..num_paragraphs (", num, ")");
  const std::u32string first_word = text::to_lower(kwarg_text(in, "first_word"));
  const auto paragraphs = text::split_literal(value, U"\n\n");
  auto count = static_cast<std::int64_t>(paragraphs.size());
  for (const auto p : paragraphs) count -= text::strip(p).empty() ? 1 : 0;
  if (nth > count) return false;
  const std::u32string_view paragraph = text::strip(paragraphs[static_cast<std::size_t>(nth - 1)]);
  if (paragraph.empty()) return false;
  std::u32string_view word = text::split_whitespace(paragraph).front();
  while (!word.empty() && word.front() == U'\'') word.remove_prefix(1);
  while (!word.empty() && word.front() == U'"') word.remove_prefix(1);
  std::u32string got;
  for (const char32_t c : word) {
    if (std::u32string_view(U".,?!'\"").find(c) != std::u32string_view::npos) break;
    got += text::to_lower(std::u32string(1, c));
  }
  return count == num && got == first_word;
}

// None of the words occurs as a whole word (\b on both sides), case-insensitively.
bool check_forbidden_words(const Instruction& in, std::u32string_view value) {
  for (const auto& word : kwarg_literals(in, "forbidden_words")) {
    for (std::size_t at = 0; at + word.size() <= value.size(); ++at) {
      if (!matches_folded(value, at, word)) continue;
      const bool start_ok = (at > 0 && text::is_word(value[at - 1])) != text::is_word(value[at]);
      const std::size_t end = at + word.size();
      const bool end_ok = (end < value.size() && text::is_word(value[end])) != text::is_word(value[end - 1]);
      if (start_ok && end_ok) return false;
    }
  }
  return true;
}

// Exactly two non-empty, different responses separated by "******" (empty only at the ends).
bool check_two_responses(const Instruction&, std::u32string_view value) {
  std::vector<std::u32string_view> valid;
  const auto pieces = text::split_literal(value, U"******");
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (text::strip(pieces[i]).empty()) {
      if (i != 0 && i + 1 != pieces.size()) return false;
    } else {
      valid.push_back(pieces[i]);
    }
  }
  return valid.size() == 2 && text::strip(valid[0]) != text::strip(valid[1]);
}

bool check_repeat_prompt(const Instruction& in, std::u32string_view value) {
  const std::u32string prompt = kwarg_text(in, "prompt_to_repeat");
  KVSAFE_CHECK(!prompt.empty(), "IFEval instruction '", in.id, "': kwarg 'prompt_to_repeat' is empty");
  return text::to_lower(text::strip(value)).starts_with(text::to_lower(text::strip(prompt)));
}

bool check_end(const Instruction& in, std::u32string_view value) {
  const std::u32string phrase = text::to_lower(text::strip(kwarg_text(in, "end_phrase")));
  return text::to_lower(text::strip_chars(text::strip(value), U"\"")).ends_with(phrase);
}

// A "<<title>>" on one line (greedy to the line's last ">>") with something besides '<', '>'
// and whitespace inside.
bool check_title(const Instruction&, std::u32string_view value) {
  for (std::size_t at = 0; at + 1 < value.size(); ++at) {
    if (value[at] != U'<' || value[at + 1] != U'<') continue;
    const std::size_t end = line_end(value, at);
    const std::size_t close = value.substr(0, end).rfind(U">>");
    if (close == std::u32string_view::npos || close < at + 3) continue;
    const std::u32string_view title = value.substr(at, close + 2 - at);
    std::size_t b = 0;
    std::size_t e = title.size();
    while (b < e && title[b] == U'<') ++b;
    while (e > b && title[e - 1] == U'>') --e;
    if (!text::strip(title.substr(b, e - b)).empty()) return true;
    at = close + 1;
  }
  return false;
}

bool check_letter_frequency(const Instruction& in, std::u32string_view value) {
  const std::u32string letter = kwarg_text(in, "letter");
  KVSAFE_CHECK(letter.size() == 1 && ((letter[0] | 0x20) >= U'a' && (letter[0] | 0x20) <= U'z'), "IFEval instruction '",
               in.id, "': kwarg 'letter' must be one letter a-z");
  const char32_t target = letter[0] | 0x20;
  const std::u32string low = text::to_lower(value);
  const auto count = static_cast<std::int64_t>(std::ranges::count(low, target));
  return compare(kwarg_less_than(in, "let_relation"), count, kwarg_count(in, "let_frequency"));
}

bool check_english_capital(const Instruction&, std::u32string_view value) {
  return text::py_isupper(value) && is_english(value);
}

bool check_english_lowercase(const Instruction&, std::u32string_view value) {
  return text::py_islower(value) && is_english(value);
}

bool check_no_comma(const Instruction&, std::u32string_view value) {
  return value.find(U',') == std::u32string_view::npos;
}

bool check_capital_word_frequency(const Instruction& in, std::u32string_view value) {
  return compare(kwarg_less_than(in, "capital_relation"), text::count_capital_words(value),
                 kwarg_count(in, "capital_frequency"));
}

bool check_quotation(const Instruction&, std::u32string_view value) {
  const std::u32string_view v = text::strip(value);
  return v.size() > 1 && v.front() == U'"' && v.back() == U'"';
}

struct Entry {
  std::string_view id;
  Checker check;
};

// Sorted by id.
constexpr std::array<Entry, 25> kRegistry{{
    {"change_case:capital_word_frequency", check_capital_word_frequency},
    {"change_case:english_capital", check_english_capital},
    {"change_case:english_lowercase", check_english_lowercase},
    {"combination:repeat_prompt", check_repeat_prompt},
    {"combination:two_responses", check_two_responses},
    {"detectable_content:number_placeholders", check_placeholders},
    {"detectable_content:postscript", check_postscript},
    {"detectable_format:constrained_response", check_constrained_response},
    {"detectable_format:json_format", check_json},
    {"detectable_format:multiple_sections", check_sections},
    {"detectable_format:number_bullet_lists", check_bullet_lists},
    {"detectable_format:number_highlighted_sections", check_highlights},
    {"detectable_format:title", check_title},
    {"keywords:existence", check_keywords_exist},
    {"keywords:forbidden_words", check_forbidden_words},
    {"keywords:frequency", check_keyword_frequency},
    {"keywords:letter_frequency", check_letter_frequency},
    {"language:response_language", check_response_language},
    {"length_constraints:nth_paragraph_first_word", check_nth_paragraph_first_word},
    {"length_constraints:number_paragraphs", check_paragraphs},
    {"length_constraints:number_sentences", check_number_sentences},
    {"length_constraints:number_words", check_number_words},
    {"punctuation:no_comma", check_no_comma},
    {"startend:end_checker", check_end},
    {"startend:quotation", check_quotation},
}};

Checker find_checker(const Instruction& in) {
  const auto it = std::ranges::lower_bound(kRegistry, std::string_view(in.id), {}, &Entry::id);
  KVSAFE_CHECK(it != kRegistry.end() && it->id == in.id, "unknown IFEval instruction id '", in.id, "'");
  return it->check;
}

bool followed(Checker check, const Instruction& in, std::u32string_view value) {
  return !text::strip(value).empty() && check(in, value);
}

std::u32string without_stars(std::u32string_view s) {
  std::u32string out;
  for (const char32_t c : s) {
    if (c != U'*') out.push_back(c);
  }
  return out;
}

std::u32string join_lines(const std::vector<std::u32string_view>& lines, std::size_t begin, std::size_t end) {
  std::u32string out;
  for (std::size_t i = begin; i < end; ++i) {
    if (i > begin) out += U'\n';
    out += lines[i];
  }
  return std::u32string(text::strip(out));
}

}  // namespace

std::span<const std::string_view> instruction_ids() {
  static const auto ids = [] {
    std::array<std::string_view, kRegistry.size()> out{};
    std::ranges::transform(kRegistry, out.begin(), &Entry::id);
    return out;
  }();
  return ids;
}

bool follows(const Instruction& instruction, std::string_view response) {
  return find_checker(instruction)(instruction, text::decode_utf8(response));
}

bool follows_strict(const Instruction& instruction, std::string_view response) {
  return followed(find_checker(instruction), instruction, text::decode_utf8(response));
}

bool follows_loose(const Instruction& instruction, std::string_view response) {
  const Checker check = find_checker(instruction);
  const std::u32string r = text::decode_utf8(response);
  const auto lines = text::split_literal(r, U"\n");
  const std::size_t n = lines.size();
  std::vector<std::u32string> variants{r, without_stars(r), join_lines(lines, 1, n), join_lines(lines, 0, n - 1),
                                       join_lines(lines, 1, n > 1 ? n - 1 : 1)};
  for (std::size_t i = 2; i < 5; ++i) variants.push_back(without_stars(variants[i]));
  return std::ranges::any_of(variants, [&](const std::u32string& v) { return followed(check, instruction, v); });
}

std::vector<Instruction> instructions_from_input(const nlohmann::json& example) {
  const std::string key = example.contains("key") ? example["key"].dump() : "?";
  KVSAFE_CHECK(example.is_object() && example.contains("instruction_id_list") &&
                   example["instruction_id_list"].is_array() && example.contains("kwargs") &&
                   example["kwargs"].is_array(),
               "IFEval example key ", key, ": needs the lists 'instruction_id_list' and 'kwargs'");
  const auto& ids = example["instruction_id_list"];
  const auto& kwargs = example["kwargs"];
  KVSAFE_CHECK(ids.size() == kwargs.size(), "IFEval example key ", key, ": ", ids.size(), " instruction ids but ",
               kwargs.size(), " kwargs");
  std::vector<Instruction> out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    KVSAFE_CHECK(ids[i].is_string() && kwargs[i].is_object(), "IFEval example key ", key, ": instruction ", i,
                 " needs a string id and an object of kwargs");
    nlohmann::json args = nlohmann::json::object();
    for (const auto& [name, value] : kwargs[i].items()) {
      if (!value.is_null()) args[name] = value;
    }
    out.push_back(Instruction{.id = ids[i].get<std::string>(), .kwargs = std::move(args)});
  }
  return out;
}

PromptVerdict evaluate_prompt(std::span<const Instruction> instructions, std::string_view response) {
  PromptVerdict verdict;
  for (const Instruction& instruction : instructions) {
    verdict.strict.push_back(follows_strict(instruction, response));
    verdict.loose.push_back(follows_loose(instruction, response));
  }
  return verdict;
}

std::vector<ScoredInstruction> score_instructions(std::span<const Instruction> instructions,
                                                  std::string_view response) {
  std::vector<ScoredInstruction> scored;
  for (const Instruction& instruction : instructions) {
    ScoredInstruction one{.id = instruction.id};
    try {
      one.strict = follows_strict(instruction, response);
      one.loose = follows_loose(instruction, response);
    } catch (const InputError& error) {
      one.strict.reset();
      one.loose.reset();
      one.unscored = error.what();
    }
    scored.push_back(std::move(one));
  }
  return scored;
}

Accuracy accuracy(std::span<const PromptVerdict> verdicts) {
  Accuracy acc;
  std::int64_t inst_total = 0;
  std::int64_t inst_strict = 0;
  std::int64_t inst_loose = 0;
  std::int64_t prompt_strict = 0;
  std::int64_t prompt_loose = 0;
  for (const PromptVerdict& v : verdicts) {
    inst_total += static_cast<std::int64_t>(v.strict.size());
    inst_strict += std::ranges::count(v.strict, true);
    inst_loose += std::ranges::count(v.loose, true);
    prompt_strict += std::ranges::all_of(v.strict, [](bool b) { return b; }) ? 1 : 0;
    prompt_loose += std::ranges::all_of(v.loose, [](bool b) { return b; }) ? 1 : 0;
  }
  if (!verdicts.empty()) {
    const auto prompts = static_cast<double>(verdicts.size());
    acc.prompt_level_strict = static_cast<double>(prompt_strict) / prompts;
    acc.prompt_level_loose = static_cast<double>(prompt_loose) / prompts;
  }
  if (inst_total > 0) {
    acc.inst_level_strict = static_cast<double>(inst_strict) / static_cast<double>(inst_total);
    acc.inst_level_loose = static_cast<double>(inst_loose) / static_cast<double>(inst_total);
  }
  return acc;
}

}  // namespace kvsafe::eval::ifeval
