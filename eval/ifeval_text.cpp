// Text primitives of the IFEval checkers: UTF-8, Python's character classes, and the word,
// sentence and capital-word counts of the reference (see ifeval_text.h for the rules and the
// known divergences).

#include "eval/ifeval_text.h"

#include <algorithm>
#include <array>
#include <optional>

namespace kvsafe::eval::ifeval_text {
namespace {

bool in_ranges(std::span<const CodeRange> ranges, char32_t c) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                             [](char32_t value, const CodeRange& r) { return value < r.first; });
  if (it == ranges.begin()) return false;
  --it;
  return c <= it->last;
}

char32_t lower_one(char32_t c) {
  if (c < 0x80) return (c >= U'A' && c <= U'Z') ? c + 32 : c;
  const auto runs = unicode_tables().lower_runs;
  auto it =
      std::upper_bound(runs.begin(), runs.end(), c, [](char32_t value, const LowerRun& r) { return value < r.first; });
  if (it == runs.begin()) return c;
  --it;
  if (c > it->last || (c - it->first) % static_cast<char32_t>(it->stride) != 0) return c;
  return static_cast<char32_t>(static_cast<std::int32_t>(c) + it->delta);
}

bool contains(std::u32string_view set, char32_t c) {
  return set.find(c) != std::u32string_view::npos;
}

// ---- Punkt (untrained) -------------------------------------------------------------------

// Characters that cannot appear within a Punkt word (nltk's "NonWord" class).
constexpr std::u32string_view kPunktNonWord = U")\";}]*:@'({[\u2018\u2019\u201c\u201d\u00ab\u00bb?!";
// Characters a Punkt word may not start with.
constexpr std::u32string_view kPunktNoWordStart = U"(\"`{[:;&#*@)}]-,";
// Closing punctuation that realignment moves to the previous sentence.
constexpr std::u32string_view kPunktClosing = U"\"')]}\u2018\u2019\u201c\u201d\u00ab\u00bb";

bool is_ascii_space(char32_t c) {
  return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' || c == U'\v' || c == U'\f';
}

bool is_sent_end(char32_t c) {
  return c == U'.' || c == U'?' || c == U'!';
}

// Length of Punkt's multi-character punctuation at `pos` (--, .., ". . ."), 0 if none.
std::size_t multi_char_punct(std::u32string_view s, std::size_t pos) {
  if (pos >= s.size()) return 0;
  const char32_t c = s[pos];
  if (c == U'-' || c == U'.') {
    std::size_t end = pos;
    while (end < s.size() && s[end] == c) ++end;
    if (end - pos >= 2) return end - pos;
  }
  if (c == U'.') {  // (?:\.\s){2,}\.
    std::size_t end = pos;
    int pairs = 0;
    while (end + 1 < s.size() && s[end] == U'.' && is_space(s[end + 1])) {
      end += 2;
      ++pairs;
    }
    while (pairs >= 2) {
      if (end < s.size() && s[end] == U'.') return end + 1 - pos;
      end -= 2;  // backtrack one pair
      --pairs;
    }
  }
  return 0;
}

bool punkt_word_ends_at(std::u32string_view s, std::size_t q) {
  if (q >= s.size() || is_space(s[q]) || contains(kPunktNonWord, s[q]) || multi_char_punct(s, q) > 0) return true;
  if (s[q] == U',') {
    const std::size_t n = q + 1;
    return n >= s.size() || is_space(s[n]) || contains(kPunktNonWord, s[n]) || multi_char_punct(s, n) > 0;
  }
  return false;
}

// Punkt's word tokenizer.
std::vector<std::u32string_view> punkt_words(std::u32string_view s) {
  std::vector<std::u32string_view> tokens;
  std::size_t pos = 0;
  while (pos < s.size()) {
    if (is_space(s[pos])) {
      ++pos;
      continue;
    }
    std::size_t len = multi_char_punct(s, pos);
    if (len == 0) {
      len = 1;
      if (!contains(kPunktNoWordStart, s[pos])) {
        while (!punkt_word_ends_at(s, pos + len)) ++len;
      }
    }
    tokens.push_back(s.substr(pos, len));
    pos += len;
  }
  return tokens;
}

bool punkt_numeric(std::u32string_view tok) {  // ^-?[\.,]?\d[\d,\.-]*\.?$
  std::size_t i = 0;
  if (i < tok.size() && tok[i] == U'-') ++i;
  if (i < tok.size() && (tok[i] == U'.' || tok[i] == U',')) ++i;
  if (i >= tok.size() || !is_digit(tok[i])) return false;
  for (++i; i < tok.size(); ++i) {
    const char32_t c = tok[i];
    if (!is_digit(c) && c != U',' && c != U'.' && c != U'-') return false;
  }
  return true;
}

bool punkt_sentbreak_in(std::u32string_view context) {
  const auto tokens = punkt_words(context);
  std::vector<char> sentbreak(tokens.size(), 0);
  std::vector<char> ellipsis(tokens.size(), 0);
  for (std::size_t i = 0; i < tokens.size(); ++i) {  // first pass (no abbreviations known)
    const auto tok = tokens[i];
    if (tok.size() == 1 && is_sent_end(tok[0])) {
      sentbreak[i] = 1;
    } else if (tok.size() >= 2 && std::all_of(tok.begin(), tok.end(), [](char32_t c) { return c == U'.'; })) {
      ellipsis[i] = 1;
    } else if (!tok.empty() && tok.back() == U'.' && !(tok.size() >= 2 && tok[tok.size() - 2] == U'.')) {
      sentbreak[i] = 1;
    }
  }
  for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {  // second pass
    const auto tok = tokens[i];
    if (tok.empty() || tok.back() != U'.') continue;
    const bool initial = tok.size() == 2 && is_nltk_word(tok[0]) && !is_digit(tok[0]);
    if (!initial && !punkt_numeric(tok)) continue;
    const auto next = tokens[i + 1];
    std::optional<bool> starter;  // the orthographic heuristic with no context: False or unknown
    if ((next.size() == 1 && contains(U";:,.!?", next[0])) || is_lower(next[0])) starter = false;
    if (starter.has_value() || (initial && is_upper(next[0]))) sentbreak[i] = 0;
  }
  bool found = false;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (found) return true;
    if (sentbreak[i]) found = true;
  }
  return false;
}

struct Slice {
  std::size_t start;
  std::size_t stop;
};

std::vector<Slice> punkt_slices(std::u32string_view s) {
  struct Candidate {
    std::size_t pos;
    std::size_t word_start;
    std::size_t after_end;  // end of the lookahead (punctuation or whitespace + next token)
    std::optional<std::size_t> next_tok;
  };
  std::vector<Candidate> candidates;
  std::size_t previous_start = 0;
  std::size_t previous_stop = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_sent_end(s[i])) continue;
    Candidate cand{.pos = i, .word_start = 0, .after_end = 0, .next_tok = std::nullopt};
    if (i + 1 < s.size() && contains(kPunktNonWord, s[i + 1])) {
      cand.after_end = i + 2;
    } else {
      std::size_t j = i + 1;
      while (j < s.size() && is_space(s[j])) ++j;
      if (j == i + 1 || j >= s.size()) continue;
      cand.next_tok = j;
      while (j < s.size() && !is_space(s[j])) ++j;
      cand.after_end = j;
    }
    // The word before the candidate: after the last ASCII whitespace since the previous
    // candidate, else where the previous candidate's word started (the overlap nltk merges).
    std::size_t last_ws = 0;
    for (std::size_t k = i; k > previous_stop; --k) {
      if (is_ascii_space(s[k - 1])) {
        last_ws = k - 1 - previous_stop;
        break;
      }
    }
    cand.word_start = last_ws != 0 ? previous_stop + last_ws + 1 : previous_start;
    if (!candidates.empty() && previous_stop > cand.word_start) candidates.pop_back();
    candidates.push_back(cand);
    previous_start = cand.word_start;
    previous_stop = i;
  }
  std::vector<Slice> slices;
  std::size_t last_break = 0;
  for (const Candidate& cand : candidates) {
    std::u32string context(s.substr(cand.word_start, cand.pos - cand.word_start));
    context += s.substr(cand.pos, cand.after_end - cand.pos);
    if (!punkt_sentbreak_in(context)) continue;
    slices.push_back({last_break, cand.pos + 1});
    last_break = cand.next_tok.value_or(cand.pos + 1);
  }
  slices.push_back({last_break, rstrip(s).size()});
  return slices;
}

// Length of the closing punctuation realignment moves, and how far the next sentence's start
// moves (closing characters plus following whitespace); nullopt when it does not apply.
std::optional<std::pair<std::size_t, std::size_t>> realignment(std::u32string_view s) {
  for (std::size_t k = 1; k <= s.size() && contains(kPunktClosing, s[k - 1]); ++k) {
    if (k == s.size()) return std::pair{k, k};
    if (is_space(s[k])) {
      std::size_t end = k;
      while (end < s.size() && is_space(s[end])) ++end;
      return std::pair{k, end};
    }
    if (k + 1 < s.size() && s[k] == U'-' && s[k + 1] == U'-') return std::pair{k, k};
  }
  return std::nullopt;
}

// ---- word_tokenize (the parts that change the count of all-capital tokens) ---------------

constexpr std::u32string_view kTreebankSplit =
    U"\u00ab\u201c\u2018\u201e`\u00bb\u201d\u2019\";@#$%&?!*()[]{}<>\u2012\u2013\u2014\u2015";

bool equals_ignore_case(std::u32string_view a, std::u32string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower_one(a[i]) != lower_one(b[i])) return false;
  }
  return true;
}

void split_contractions(std::u32string_view tok, std::vector<std::u32string_view>& out) {
  // cannot, gimme, ... as whole words inside the token: split in two.
  struct Pair {
    std::u32string_view first;
    std::u32string_view second;
    bool needs_token_end;  // wanna: only before whitespace
  };
  static constexpr std::array<Pair, 8> kPairs{{{U"can", U"not", false},
                                               {U"d", U"'ye", false},
                                               {U"gim", U"me", false},
                                               {U"gon", U"na", false},
                                               {U"got", U"ta", false},
                                               {U"lem", U"me", false},
                                               {U"more", U"'n", false},
                                               {U"wan", U"na", true}}};
  for (const Pair& pair : kPairs) {
    const std::size_t len = pair.first.size() + pair.second.size();
    for (std::size_t at = 0; at + len <= tok.size(); ++at) {
      if (at > 0 && is_word(tok[at - 1])) continue;
      const std::size_t end = at + len;
      if (pair.needs_token_end ? end != tok.size() : (end < tok.size() && is_word(tok[end]))) continue;
      if (!equals_ignore_case(tok.substr(at, pair.first.size()), pair.first)) continue;
      if (!equals_ignore_case(tok.substr(at + pair.first.size(), pair.second.size()), pair.second)) continue;
      split_contractions(tok.substr(0, at + pair.first.size()), out);
      split_contractions(tok.substr(at + pair.first.size()), out);
      return;
    }
  }
  // Contraction suffixes at the token's end (after a character that is not ' or space).
  static constexpr std::array<std::u32string_view, 14> kSuffixes{
      U"'s", U"'S", U"'m", U"'M", U"'d", U"'D", U"'ll", U"'LL", U"'re", U"'RE", U"'ve", U"'VE", U"n't", U"N'T"};
  for (const auto suffix : kSuffixes) {
    if (tok.size() > suffix.size() && tok.ends_with(suffix) && tok[tok.size() - suffix.size() - 1] != U'\'') {
      out.push_back(tok.substr(0, tok.size() - suffix.size()));
      out.push_back(tok.substr(tok.size() - suffix.size()));
      return;
    }
  }
  if (tok.size() > 1 && tok.back() == U'\'' && tok[tok.size() - 2] != U'\'') {
    out.push_back(tok.substr(0, tok.size() - 1));
    return;
  }
  out.push_back(tok);
}

}  // namespace

std::u32string decode_utf8(std::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto b0 = static_cast<unsigned char>(bytes[i]);
    int extra = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    } else if ((b0 & 0xE0) == 0xC0) {
      extra = 1, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      extra = 2, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      extra = 3, cp = b0 & 0x07, min = 0x10000;
    } else {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    bool ok = i + static_cast<std::size_t>(extra) < bytes.size();
    for (int k = 1; ok && k <= extra; ++k) {
      const auto b = static_cast<unsigned char>(bytes[i + k]);
      if ((b & 0xC0) != 0x80) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (b & 0x3F);
    }
    if (!ok || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<std::size_t>(extra) + 1;
  }
  return out;
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

bool is_word(char32_t c) {
  return in_ranges(unicode_tables().word, c);
}
bool is_nltk_word(char32_t c) {
  return in_ranges(unicode_tables().nltk_word, c);
}
bool is_digit(char32_t c) {
  return in_ranges(unicode_tables().digit, c);
}
bool is_space(char32_t c) {
  return in_ranges(unicode_tables().space, c);
}
bool is_upper(char32_t c) {
  return in_ranges(unicode_tables().upper, c);
}
bool is_lower(char32_t c) {
  return in_ranges(unicode_tables().lower, c);
}
bool is_title(char32_t c) {
  return in_ranges(unicode_tables().title, c);
}

std::u32string to_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    if (c == 0x130) {  // the one multi-character lower-case mapping
      out.push_back(U'i');
      out.push_back(0x307);
    } else {
      out.push_back(lower_one(c));
    }
  }
  return out;
}

bool py_isupper(std::u32string_view text) {
  bool cased = false;
  for (const char32_t c : text) {
    if (is_lower(c) || is_title(c)) return false;
    if (is_upper(c)) cased = true;
  }
  return cased;
}

bool py_islower(std::u32string_view text) {
  bool cased = false;
  for (const char32_t c : text) {
    if (is_upper(c) || is_title(c)) return false;
    if (is_lower(c)) cased = true;
  }
  return cased;
}

std::u32string_view strip(std::u32string_view text) {
  std::size_t begin = 0;
  while (begin < text.size() && is_space(text[begin])) ++begin;
  return rstrip(text.substr(begin));
}

std::u32string_view rstrip(std::u32string_view text) {
  std::size_t end = text.size();
  while (end > 0 && is_space(text[end - 1])) --end;
  return text.substr(0, end);
}

std::u32string_view strip_chars(std::u32string_view text, std::u32string_view chars) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && contains(chars, text[begin])) ++begin;
  while (end > begin && contains(chars, text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

std::vector<std::u32string_view> split_whitespace(std::u32string_view text) {
  std::vector<std::u32string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

std::vector<std::u32string_view> split_literal(std::u32string_view text, std::u32string_view sep) {
  std::vector<std::u32string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = text.find(sep, start);
    if (at == std::u32string_view::npos) break;
    out.push_back(text.substr(start, at - start));
    start = at + sep.size();
  }
  out.push_back(text.substr(start));
  return out;
}

std::int64_t count_words(std::u32string_view text) {
  std::int64_t count = 0;
  bool in_word = false;
  for (const char32_t c : text) {
    const bool word = is_nltk_word(c);
    if (word && !in_word) ++count;
    in_word = word;
  }
  return count;
}

std::int64_t count_sentences(std::u32string_view text) {
  const std::vector<Slice> slices = punkt_slices(text);
  std::int64_t count = 0;
  std::size_t shift = 0;
  for (std::size_t i = 0; i < slices.size(); ++i) {
    const std::size_t start = slices[i].start + shift;
    const std::size_t stop = slices[i].stop;
    if (i + 1 == slices.size()) {
      if (start < stop) ++count;
      break;
    }
    const Slice next = slices[i + 1];
    const auto moved = realignment(text.substr(next.start, next.stop - next.start));
    if (moved.has_value()) {
      ++count;  // the sentence, extended by the closing punctuation
      shift = moved->second;
    } else {
      shift = 0;
      if (start < stop) ++count;
    }
  }
  return count;
}

std::int64_t count_capital_words(std::u32string_view text) {
  std::vector<std::u32string_view> pieces;
  std::size_t i = 0;
  std::size_t start = 0;
  auto flush = [&](std::size_t end) {
    if (end > start) pieces.push_back(text.substr(start, end - start));
  };
  while (i < text.size()) {
    const char32_t c = text[i];
    std::size_t skip = 0;
    if (is_space(c) || contains(kTreebankSplit, c)) {
      skip = 1;
    } else if ((c == U',' || c == U':') && !(i + 1 < text.size() && is_digit(text[i + 1]))) {
      skip = 1;
    } else if ((c == U'-' || c == U'.') && i + 1 < text.size() && text[i + 1] == c) {
      skip = 2;
      while (c == U'.' && i + skip < text.size() && text[i + skip] == U'.') ++skip;
    }
    if (skip == 0) {
      ++i;
      continue;
    }
    flush(i);
    i += skip;
    start = i;
  }
  flush(text.size());
  std::int64_t count = 0;
  std::vector<std::u32string_view> tokens;
  for (auto piece : pieces) {
    // The sentence-final period is split off (see the header comment).
    if (piece.size() >= 2 && piece.back() == U'.' && piece[piece.size() - 2] != U'.') piece.remove_suffix(1);
    tokens.clear();
    split_contractions(piece, tokens);
    for (const auto tok : tokens) count += py_isupper(tok) ? 1 : 0;
  }
  return count;
}

}  // namespace kvsafe::eval::ifeval_text
