#pragma once
// The pre-tokenizer stage (HF `pre_tokenizers`): splits normalized text into the words
// BPE merges within. Each step splits every piece the previous step produced, exactly as
// HF's Sequence does; splits follow HF's SplitDelimiterBehavior rules.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer_data.h"
#include "text/tokenizer_regex.h"

namespace kvsafe::engine {

// GPT-2's pre-tokenization regex as HF's ByteLevel pre-tokenizer spells it.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// One piece of text on its way to BPE.
struct PreToken {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the original input (Metaspace "first")
};

class PreTokenizer {
 public:
  // Compiles the steps; throws InputError naming `source` on a bad pattern.
  PreTokenizer(const std::vector<PreTokenizerStep>& steps, std::string_view source);
  ~PreTokenizer();

  // Appends the words of `text` (valid UTF-8) to `words`.
  void split(std::string_view text, bool at_start, std::vector<PreToken>& words) const;

  // True when a ByteLevel step maps the words onto bytes: BPE then starts from single
  // bytes and the vocabulary is spelled in GPT-2's byte alphabet.
  bool byte_level() const { return byte_level_; }

 private:
  struct Compiled;
  void apply(const Compiled& step, PreToken&& piece, std::vector<PreToken>& out) const;

  std::vector<std::unique_ptr<Compiled>> steps_;
  bool byte_level_ = false;
};

}  // namespace kvsafe::engine
