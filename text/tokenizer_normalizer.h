#pragma once
// The normalizer stage of a tokenizer (HF `normalizers`): Unicode normalization forms
// (through ICU), lowercase, prepend, replace and strip, applied in order to each piece
// of input between added tokens.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer_data.h"
#include "text/tokenizer_regex.h"

namespace kvsafe::engine {

class TokenizerNormalizer {
 public:
  // Compiles the steps (regex patterns included); throws InputError naming `source`.
  TokenizerNormalizer(const std::vector<NormalizerStep>& steps, std::string_view source);

  // The normalized text; `text` must be valid UTF-8.
  std::string normalize(std::string_view text) const;

  bool empty() const { return steps_.empty(); }

 private:
  struct Compiled {
    NormalizerStep step;
    std::unique_ptr<TokenizerRegex> regex;  // kReplace with a regex pattern
  };
  std::vector<Compiled> steps_;
};

}  // namespace kvsafe::engine
