#pragma once
// Text primitives of the IFEval checkers (eval/ifeval_instructions.h), internal to
// kvsafe_eval_ifeval. Everything works on code points (std::u32string), as the reference's
// Python str does; the character classes are Python's (eval/ifeval_unicode_tables.cpp,
// generated from unicodedata by tests/oracles/ifeval_oracle.py --write-unicode-tables).
//
// Word and sentence splitting follow the reference (shared/reference/ifeval_oracle,
// instructions_util.py), which uses nltk:
//   * count_words: nltk's RegexpTokenizer(r"\w+"), i.e. maximal runs of \w as nltk compiles
//     it: nltk 3.10.4 (nltk.redos) uses the `regex` engine, whose \w also takes combining marks (one word
//     "हिंदी"); the oracle ran nltk 3.10.4. Older nltk (stdlib re) splits at the marks.
//   * count_sentences: nltk's Punkt sentence tokenizer. Reproduced here: Punkt's candidate
//     rule ([.?!] followed by punctuation or by whitespace and a token), its overlap merge,
//     its word tokenizer on the candidate's context, the first/second annotation passes and
//     boundary realignment, all with EMPTY parameters (no learned abbreviations,
//     collocations, sentence starters, orthographic context).
//     KNOWN DIVERGENCE: the reference loads the trained English model (punkt/english.pickle),
//     which cannot be downloaded here; the oracle therefore runs untrained Punkt too. With the
//     trained model an abbreviation ("Dr. Smith", "e.g. this", "U.S. law") does not end a
//     sentence; here it does.
//   * count_capital_words: nltk.word_tokenize (Treebank-style rules) followed by str.isupper.
//     Only the splits that change how many tokens are all-capitals are reproduced: whitespace;
//     the split punctuation ("“‘„«»”’`;@#$%&?!*()[]{}<>, the dashes U+2012..U+2015, "--",
//     runs of two or more '.'); ',' and ':' not followed by a digit; the contraction suffixes
//     's 'm 'd 'll 're 've n't (in the case forms nltk lists) and a trailing "'" at a token's
//     end; cannot/gonna/gotta/gimme/lemme/wanna/d'ye/more'n split in two.
//     KNOWN DIVERGENCE: a ':' right after a split-off ',' ("AB,:CD") is split off here too (nltk
//     keeps ":CD"; the capital-word count is the same), and the sentence split is not applied
//     first (it only moves uncased periods).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvsafe::eval::ifeval_text {

struct CodeRange {
  char32_t first;  // inclusive
  char32_t last;   // inclusive
};

// A run of code points first, first+stride, ... <= last whose str.lower() is cp + delta.
struct LowerRun {
  char32_t first;
  char32_t last;
  std::int32_t delta;
  std::int32_t stride;
};

struct UnicodeTables {
  std::span<const CodeRange> word;       // Python re \w on str (isalnum() or '_')
  std::span<const CodeRange> nltk_word;  // \w of the `regex` engine nltk compiles with
  std::span<const CodeRange> digit;      // Python re \d on str (isdecimal())
  std::span<const CodeRange> space;      // Python re \s, str.split()/strip() whitespace
  std::span<const CodeRange> upper;      // str.isupper() of one character
  std::span<const CodeRange> lower;      // str.islower() of one character
  std::span<const CodeRange> title;      // title-case letters (istitle() and not isupper())
  std::span<const LowerRun> lower_runs;  // one-code-point str.lower() mappings
};

// The generated tables (eval/ifeval_unicode_tables.cpp).
const UnicodeTables& unicode_tables();

// UTF-8 -> code points. Invalid bytes become U+FFFD each (never throws); the reference reads
// responses as Python str, so valid UTF-8 is what reaches it.
std::u32string decode_utf8(std::string_view bytes);
std::string encode_utf8(std::u32string_view text);

bool is_word(char32_t c);
bool is_nltk_word(char32_t c);
bool is_digit(char32_t c);
bool is_space(char32_t c);
bool is_upper(char32_t c);
bool is_lower(char32_t c);
bool is_title(char32_t c);

// Python's str.lower() (full mapping: U+0130 becomes "i" U+0307).
std::u32string to_lower(std::u32string_view text);
// Python's str.isupper() / str.islower(): no character of the other case (or title case) and
// at least one cased character of this case.
bool py_isupper(std::u32string_view text);
bool py_islower(std::u32string_view text);
// Python's str.strip() / lstrip() / rstrip() with no argument (Unicode whitespace) and with a
// set of characters.
std::u32string_view strip(std::u32string_view text);
std::u32string_view rstrip(std::u32string_view text);
std::u32string_view strip_chars(std::u32string_view text, std::u32string_view chars);
// Python's str.split() with no argument: runs of whitespace separate, no empty pieces.
std::vector<std::u32string_view> split_whitespace(std::u32string_view text);
// Python's str.split(sep) with a literal separator (empty pieces kept).
std::vector<std::u32string_view> split_literal(std::u32string_view text, std::u32string_view sep);

// The reference's count_words: the number of maximal runs of \w.
std::int64_t count_words(std::u32string_view text);
// The reference's count_sentences under untrained Punkt (see the header comment).
std::int64_t count_sentences(std::u32string_view text);
// The number of nltk.word_tokenize tokens that are str.isupper() (see the header comment).
std::int64_t count_capital_words(std::u32string_view text);

}  // namespace kvsafe::eval::ifeval_text
