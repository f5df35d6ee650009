#pragma once
// Finds added tokens (special and user-defined) in text, as HF's AddedVocabulary does:
// leftmost-longest, non-overlapping matches of the exact token text, then each match's
// single_word / lstrip / rstrip rules. Special tokens are only honoured when the caller
// asks; otherwise their text stays plain text (HF `encode_special_tokens`).

#include <string_view>
#include <vector>

#include "text/tokenizer_data.h"

namespace kvsafe::engine {

struct TextSegment {
  std::size_t begin = 0;  // byte range in the text given to split()
  std::size_t end = 0;
  TokenId token = -1;  // >= 0: this range is that added token; -1: plain text
};

class AddedTokenMatcher {
 public:
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  // Splits `text` into plain-text ranges and added tokens, covering it in order (ranges
  // swallowed by lstrip/rstrip belong to the token). `parse_special` = false leaves
  // special tokens' text as plain text.
  std::vector<TextSegment> split(std::string_view text, bool parse_special) const;

  bool empty() const { return tokens_.empty(); }

 private:
  std::vector<AddedToken> tokens_;
  // Indexes into tokens_ by the first byte of their content, longest content first.
  std::vector<std::vector<std::size_t>> by_first_byte_;
};

}  // namespace kvsafe::engine
