#pragma once
// TokenizerData: everything a Tokenizer is built from, in one plain description that
// both loaders produce (HF tokenizer.json: text/tokenizer_json.h; GGUF metadata:
// text/tokenizer_gguf.h) and tests can write by hand. The step types mirror the HF
// `tokenizers` components the paper's models use, so a tokenizer.json maps onto them one
// to one and the GGUF loader spells out what llama.cpp does implicitly.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvsafe::engine {

using TokenId = std::int32_t;

// How BPE picks the next pair to merge.
enum class BpeKind {
  kMergeRanks,  // the pair's position in a merges list (HF BPE, GGUF "gpt2")
  kScores,      // the score of the merged piece, highest first (GGUF "llama": SentencePiece BPE)
};

// llama.cpp's token types (GGUF tokenizer.ggml.token_type); HF files give kNormal for the
// model vocabulary and kControl / kUserDefined for added tokens.
enum class TokenKind : std::int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// A token matched verbatim in the input before any model runs (HF "added_tokens").
struct AddedToken {
  TokenId id = -1;
  std::string content{};     // the exact text
  bool special = false;      // control token: matched only with parse_special, skipped by skip_special
  bool lstrip = false;       // also swallows the whitespace on its left
  bool rstrip = false;       // also swallows the whitespace on its right
  bool single_word = false;  // only when not glued to word characters
  bool normalized = false;   // matched on normalized text instead of the raw input
};

// One HF normalizer.
struct NormalizerStep {
  enum class Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kPrepend, kReplace, kStrip };
  Kind kind = Kind::kNfc;
  std::string pattern{};          // kReplace: what to find
  bool pattern_is_regex = false;  // kReplace: `pattern` is a regex, not a literal string
  std::string content{};          // kReplace: the replacement; kPrepend: the prefix
  bool strip_left = false;        // kStrip
  bool strip_right = false;       // kStrip
};

// How a Split keeps the text its pattern matched (HF SplitDelimiterBehavior).
enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Metaspace's rule for the leading replacement character.
enum class PrependScheme { kAlways, kFirst, kNever };

// One HF pre-tokenizer.
struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel, kDigits, kMetaspace, kWhitespaceSplit };
  Kind kind = Kind::kSplit;
  std::string pattern{};                                  // kSplit: the pattern
  bool pattern_is_regex = true;                           // kSplit: regex (PCRE2, UTF + UCP) or literal string
  SplitBehavior behavior = SplitBehavior::kIsolated;      // kSplit
  bool invert = false;                                    // kSplit: the matches are the pieces, not the delimiters
  bool add_prefix_space = false;                          // kByteLevel: prepend ' ' to each piece that lacks one
  bool use_regex = true;                                  // kByteLevel: split with GPT-2's regex first
  bool individual_digits = false;                         // kDigits: one piece per digit rather than per run
  std::string replacement = "\u2581";                     // kMetaspace
  PrependScheme prepend_scheme = PrependScheme::kAlways;  // kMetaspace
  bool split = true;                                      // kMetaspace: split before each replacement character
};

// One HF decoder, applied to the list of token strings in order.
struct DecoderStep {
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
  Kind kind = Kind::kByteLevel;
  std::string pattern{};               // kReplace: literal to find
  std::string content{};               // kReplace: replacement; kStrip: the character to strip
  int strip_start = 0;                 // kStrip: at most this many leading `content` characters per token
  int strip_stop = 0;                  // kStrip: at most this many trailing ones
  std::string replacement = "\u2581";  // kMetaspace
  PrependScheme prepend_scheme = PrependScheme::kAlways;  // kMetaspace: != kNever strips one leading space
};

struct TokenizerData {
  std::string source{};  // file (and key) the description came from: every error names it

  BpeKind bpe = BpeKind::kMergeRanks;
  std::vector<std::string> tokens{};  // id -> piece as the file spells it (byte-level alphabet, ▁, <0xXX>)
  std::vector<float> scores{};        // kScores: one per token; empty otherwise
  std::vector<TokenKind> kinds{};     // one per token, or empty (all kNormal)
  // kMergeRanks: merge pairs in rank order (left, right), spelled as the tokens are.
  std::vector<std::pair<std::string, std::string>> merges{};
  std::vector<AddedToken> added_tokens{};  // ids may lie beyond `tokens` (HF added vocabulary)

  std::vector<NormalizerStep> normalizer{};
  std::vector<PreTokenizerStep> pre_tokenizer{};
  std::vector<DecoderStep> decoder{};

  bool byte_fallback = false;  // unknown characters become <0xXX> byte tokens
  bool fuse_unk = false;       // consecutive unknown characters give one unk token
  bool ignore_merges = false;  // a pre-token found whole in the vocabulary is one token (Llama-3)
  std::optional<TokenId> unk_id{};
  std::optional<TokenId> bos_id{};
  std::optional<TokenId> eos_id{};
  std::optional<TokenId> pad_id{};  // the tokenizer's own pad token (HF pad_token, GGUF padding_token_id)
  bool add_bos = false;             // the model's own default (post-processor / GGUF add_bos_token)
  bool add_eos = false;
};

}  // namespace kvsafe::engine
