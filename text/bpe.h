#pragma once
// The BPE model: turns one pre-tokenized word into token ids by repeatedly merging the
// best-ranked adjacent pair (HF tokenizers models/bpe/word.rs; llama.cpp's SPM and BPE
// sessions). Symbols form a linked list over the word and candidate merges sit in a
// priority queue ordered by (rank, position), so a word of n symbols costs O(n log n);
// finished words are cached, so frequent words cost one hash lookup.

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/tokenizer_data.h"

namespace kvsafe::engine {

// Heterogeneous-lookup hash so string_view keys find std::string entries without a copy.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using StringToId = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

struct BpeMerge {
  TokenId left = -1;
  TokenId right = -1;
  TokenId result = -1;
  std::int32_t rank = 0;  // lower merges first; equal ranks merge leftmost first
};

struct BpeOptions {
  bool byte_symbols = false;           // start from single bytes (byte-level BPE) instead of UTF-8 characters
  bool byte_fallback = false;          // a character missing from the vocabulary becomes its <0xXX> byte tokens
  bool fuse_unk = false;               // consecutive unknown characters give one unk token
  bool ignore_merges = false;          // a word found whole in the vocabulary is emitted as one token
  std::optional<TokenId> unk_id;       // unknown characters without byte fallback; nullopt drops them
  std::size_t cache_capacity = 65536;  // words kept in the cache (0: no cache)
  std::size_t max_cached_word = 256;   // longer words (bytes) are not cached
};

class Bpe {
 public:
  // `vocab`: the model vocabulary in the alphabet words arrive in (raw bytes for
  // byte-level models). `byte_tokens[b]`: the token of byte b (byte-level singletons or
  // <0xXX> fallback tokens), -1 when absent.
  Bpe(StringToId vocab, const std::vector<BpeMerge>& merges, const std::array<TokenId, 256>& byte_tokens,
      const BpeOptions& options);

  // Appends the ids of `word` to `out`. Thread-safe.
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;

  const StringToId& vocab() const { return vocab_; }

 private:
  struct MergeValue {
    std::int32_t rank = 0;
    TokenId result = -1;
  };
  static std::uint64_t pair_key(TokenId left, TokenId right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
  }
  void merge_word(std::string_view word, std::vector<TokenId>& out) const;

  StringToId vocab_;
  std::unordered_map<std::uint64_t, MergeValue> merges_;
  std::array<TokenId, 256> byte_tokens_{};
  BpeOptions options_;

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<TokenId>, StringHash, std::equal_to<>> cache_;
};

}  // namespace kvsafe::engine
