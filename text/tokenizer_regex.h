#pragma once
// A compiled pre-tokenization regex: PCRE2 with UTF + UCP (so \p{L}, \p{N} and \s cover
// all of Unicode) and JIT. HF tokenizers compiles these patterns with Oniguruma; the
// syntax its tokenizer.json files use (classes, \p{..}, (?i:..), lookahead) means the same
// in PCRE2. NOTE: `^` and `$` are line anchors (PCRE2_MULTILINE), as in Oniguruma's
// default Ruby syntax; DeepSeek's "\s+$" depends on it.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

struct pcre2_real_code_8;

namespace kvsafe::engine {

class TokenizerRegex {
 public:
  // Compiles `pattern`; on a syntax error throws InputError naming `source`, the pattern
  // and the offset of the error in it.
  TokenizerRegex(std::string_view pattern, std::string_view source);
  ~TokenizerRegex();
  TokenizerRegex(const TokenizerRegex&) = delete;
  TokenizerRegex& operator=(const TokenizerRegex&) = delete;

  // Calls on_match(begin, end) for each non-empty, non-overlapping match in `text`
  // (valid UTF-8), left to right. Safe to call from several threads at once.
  void for_each_match(std::string_view text, const std::function<void(std::size_t, std::size_t)>& on_match) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
};

}  // namespace kvsafe::engine
