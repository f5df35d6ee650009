#include "text/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "common/error.h"
#include "text/bpe.h"
#include "text/pretokenize.h"
#include "text/tokenizer_added_tokens.h"
#include "text/tokenizer_decoder.h"
#include "text/tokenizer_normalizer.h"
#include "text/unicode_utf8.h"

namespace kvsafe::engine {

struct Tokenizer::Impl {
  std::string source;
  std::vector<std::string> pieces;  // id -> file spelling (added tokens: their content)
  std::vector<bool> special;        // id -> special (control) token
  StringToId piece_to_id;
  std::optional<TokenId> bos_id, eos_id, pad_id;
  bool add_bos = false;
  bool add_eos = false;

  TokenizerNormalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::unique_ptr<Bpe> bpe;
  AddedTokenMatcher raw_matcher;         // added tokens with normalized = false
  AddedTokenMatcher normalized_matcher;  // normalized = true, matched after normalization
  std::vector<DecoderStep> decoder;
  // See can_split_at_space_marker(): words may be cut before each "X▁" boundary.
  bool split_at_space_marker = false;

  Impl(const TokenizerData& data, std::vector<AddedToken> raw, std::vector<AddedToken> normalized)
      : source(data.source),
        normalizer(data.normalizer, data.source),
        pre_tokenizer(data.pre_tokenizer, data.source),
        raw_matcher(std::move(raw)),
        normalized_matcher(std::move(normalized)),
        decoder(data.decoder) {}

  void encode_plain(std::string_view text, bool at_start, std::vector<TokenId>& ids) const {
    std::vector<PreToken> words;
    pre_tokenizer.split(text, at_start, words);
    for (const PreToken& word : words) {
      if (!split_at_space_marker) {
        bpe->encode_word(word.text, ids);
        continue;
      }
      // Cut before every ▁ that follows another character than ▁ (see create()).
      const std::string_view w = word.text;
      std::size_t begin = 0;
      for (std::size_t at = w.find(kSpaceMarker, 1); at != std::string_view::npos;
           at = w.find(kSpaceMarker, at + kSpaceMarker.size())) {
        if (at >= kSpaceMarker.size() && w.compare(at - kSpaceMarker.size(), kSpaceMarker.size(), kSpaceMarker) == 0) {
          continue;
        }
        bpe->encode_word(w.substr(begin, at - begin), ids);
        begin = at;
      }
      bpe->encode_word(w.substr(begin), ids);
    }
  }

  static constexpr std::string_view kSpaceMarker = "\u2581";
};

namespace {

std::string in_quotes(std::string_view text) {
  return "'" + std::string(text) + "'";
}

void check_id(const TokenizerData& data, std::optional<TokenId> id, std::size_t size, const char* what) {
  if (!id) return;
  KVSAFE_CHECK(*id >= 0 && static_cast<std::size_t>(*id) < size, data.source, ": ", what, " ", *id,
               " is out of range [0, ", size, ")");
}

// Pair rules for score-ordered BPE (SentencePiece, GGUF "llama"): llama.cpp merges two
// adjacent symbols whenever their concatenation is a token, best score first, leftmost
// on ties. Enumerating every split of every token turns that into pair rules whose rank
// is the merged token's score rank (equal scores share a rank, so ties go leftmost).
std::vector<BpeMerge> merges_from_scores(const TokenizerData& data, const StringToId& vocab) {
  KVSAFE_CHECK(data.scores.size() == data.tokens.size(), data.source, ": ", data.scores.size(), " scores for ",
               data.tokens.size(), " tokens");
  std::vector<float> distinct(data.scores);
  std::sort(distinct.begin(), distinct.end(), std::greater<>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<BpeMerge> merges;
  for (const auto& [piece, id] : vocab) {
    const auto rank =
        static_cast<std::int32_t>(std::lower_bound(distinct.begin(), distinct.end(),
                                                   data.scores[static_cast<std::size_t>(id)], std::greater<>()) -
                                  distinct.begin());
    std::size_t split = 0;
    next_code_point(piece, split);
    while (split < piece.size()) {
      const auto left = vocab.find(std::string_view(piece).substr(0, split));
      const auto right = vocab.find(std::string_view(piece).substr(split));
      if (left != vocab.end() && right != vocab.end()) merges.push_back({left->second, right->second, id, rank});
      next_code_point(piece, split);
    }
  }
  return merges;
}

// NOTE: SentencePiece-style models run BPE over whole sentences (no pre-tokenizer), which
// defeats the word cache. When no vocabulary piece has a ▁ after another character (▁
// only in a leading run, as SentencePiece's split_by_whitespace guarantees), no merge can
// ever join "...X" and "▁...", so cutting words there gives identical ids, and cacheable words.
bool can_split_at_space_marker(const std::vector<std::string>& tokens) {
  constexpr std::string_view kMarker = "\u2581";
  bool any_marker = false;
  for (const std::string& token : tokens) {
    std::size_t leading = 0;
    while (token.compare(leading, kMarker.size(), kMarker) == 0) leading += kMarker.size();
    any_marker = any_marker || leading > 0;
    if (token.find(kMarker, leading) != std::string::npos) return false;
  }
  return any_marker;
}

std::vector<BpeMerge> merges_from_ranks(const TokenizerData& data, const StringToId& file_vocab) {
  std::vector<BpeMerge> merges;
  merges.reserve(data.merges.size());
  for (std::size_t i = 0; i < data.merges.size(); ++i) {
    const auto& [left, right] = data.merges[i];
    const auto l = file_vocab.find(left);
    const auto r = file_vocab.find(right);
    const auto m = file_vocab.find(left + right);
    KVSAFE_CHECK(l != file_vocab.end() && r != file_vocab.end() && m != file_vocab.end(), data.source, ": merges[", i,
                 "] ", in_quotes(left + " " + right), " uses a token that is not in the vocabulary (",
                 l == file_vocab.end()   ? in_quotes(left)
                 : r == file_vocab.end() ? in_quotes(right)
                                         : in_quotes(left + right),
                 ")");
    merges.push_back({l->second, r->second, m->second, static_cast<std::int32_t>(i)});
  }
  return merges;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::create(const TokenizerData& data) {
  const std::size_t n_model = data.tokens.size();
  KVSAFE_CHECK(n_model > 0, data.source, ": the vocabulary is empty");
  KVSAFE_CHECK(data.kinds.empty() || data.kinds.size() == n_model, data.source, ": ", data.kinds.size(),
               " token types for ", n_model, " tokens");
  for (std::size_t i = 0; i < n_model; ++i) {
    const auto bad = find_invalid_utf8(data.tokens[i]);
    KVSAFE_CHECK(!bad, data.source, ": token ", i, " is not valid UTF-8 (byte ", bad.value_or(0), ")");
  }
  std::size_t n_total = n_model;
  for (const AddedToken& added : data.added_tokens) {
    KVSAFE_CHECK(added.id >= 0 && added.id < (1 << 30), data.source, ": added token ", in_quotes(added.content),
                 " has id ", added.id, " out of range");
    KVSAFE_CHECK(!added.content.empty(), data.source, ": added token ", added.id, " has empty content");
    n_total = std::max(n_total, static_cast<std::size_t>(added.id) + 1);
  }
  check_id(data, data.unk_id, n_total, "unk token id");
  check_id(data, data.bos_id, n_total, "bos token id");
  check_id(data, data.eos_id, n_total, "eos token id");
  check_id(data, data.pad_id, n_total, "pad token id");
  KVSAFE_CHECK(!data.add_bos || data.bos_id, data.source, ": add_bos is set but there is no bos token id");
  KVSAFE_CHECK(!data.add_eos || data.eos_id, data.source, ": add_eos is set but there is no eos token id");
  KVSAFE_CHECK(data.bpe != BpeKind::kMergeRanks || data.scores.empty() || data.scores.size() == n_model, data.source,
               ": scores do not match the vocabulary");
  validate_decoder(data.decoder, data.source);

  std::vector<AddedToken> raw, normalized;
  for (const AddedToken& added : data.added_tokens) (added.normalized ? normalized : raw).push_back(added);
  auto impl = std::make_unique<Impl>(data, raw, normalized);
  impl->bos_id = data.bos_id;
  impl->eos_id = data.eos_id;
  impl->pad_id = data.pad_id;
  impl->add_bos = data.add_bos;
  impl->add_eos = data.add_eos;

  impl->pieces.assign(n_total, std::string());
  impl->special.assign(n_total, false);
  std::vector<bool> filled(n_total, false);
  for (std::size_t i = 0; i < n_model; ++i) {
    impl->pieces[i] = data.tokens[i];
    filled[i] = true;
    if (!data.kinds.empty()) {
      const TokenKind kind = data.kinds[i];
      impl->special[i] = kind == TokenKind::kControl || kind == TokenKind::kUnknown;
    }
  }
  for (const AddedToken& added : data.added_tokens) {
    const auto id = static_cast<std::size_t>(added.id);
    impl->pieces[id] = added.content;
    impl->special[id] = added.special;
    filled[id] = true;
  }
  for (std::size_t i = 0; i < n_total; ++i) {
    KVSAFE_CHECK(filled[i], data.source, ": no token has id ", i, " (ids must be contiguous from 0 to ", n_total - 1,
                 ")");
  }
  StringToId file_vocab;  // model vocabulary, file spelling
  for (std::size_t i = 0; i < n_model; ++i) file_vocab.try_emplace(data.tokens[i], static_cast<TokenId>(i));
  for (std::size_t i = 0; i < n_total; ++i) impl->piece_to_id.try_emplace(impl->pieces[i], static_cast<TokenId>(i));

  // The BPE vocabulary in the alphabet words arrive in: raw bytes for byte-level models.
  const bool byte_level = impl->pre_tokenizer.byte_level();
  StringToId bpe_vocab;
  for (std::size_t i = 0; i < n_model; ++i) {
    if (data.bpe == BpeKind::kScores && !data.kinds.empty() && data.kinds[i] != TokenKind::kNormal) continue;
    std::string key = data.tokens[i];
    if (byte_level) key = byte_level_decode(data.tokens[i]).value_or(data.tokens[i]);
    bpe_vocab.try_emplace(std::move(key), static_cast<TokenId>(i));
  }
  std::array<TokenId, 256> byte_tokens{};
  byte_tokens.fill(-1);
  for (int b = 0; b < 256; ++b) {
    if (byte_level) {
      if (const auto it = bpe_vocab.find(std::string(1, static_cast<char>(b))); it != bpe_vocab.end()) {
        byte_tokens[static_cast<std::size_t>(b)] = it->second;
      }
    } else {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      if (const auto it = file_vocab.find(std::string_view(name)); it != file_vocab.end()) {
        byte_tokens[static_cast<std::size_t>(b)] = it->second;
      }
    }
  }
  const std::vector<BpeMerge> merges =
      data.bpe == BpeKind::kScores ? merges_from_scores(data, bpe_vocab) : merges_from_ranks(data, file_vocab);
  impl->split_at_space_marker = !byte_level && can_split_at_space_marker(data.tokens);
  impl->bpe = std::make_unique<Bpe>(std::move(bpe_vocab), merges, byte_tokens,
                                    BpeOptions{.byte_symbols = byte_level,
                                               .byte_fallback = data.byte_fallback,
                                               .fuse_unk = data.fuse_unk,
                                               .ignore_merges = data.ignore_merges,
                                               .unk_id = data.unk_id});
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::vector<TokenId> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  const auto bad = find_invalid_utf8(text);
  KVSAFE_CHECK(!bad, "tokenizer input is not valid UTF-8 at byte ", bad.value_or(0));
  const Impl& impl = *impl_;
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 2);
  if (options.add_bos.value_or(impl.add_bos)) {
    KVSAFE_CHECK(impl.bos_id, impl.source, ": BOS requested but the tokenizer has no bos token");
    ids.push_back(*impl.bos_id);
  }
  const auto encode_range = [&](std::string_view plain, bool at_start) {
    const std::string normalized = impl.normalizer.normalize(plain);
    if (impl.normalized_matcher.empty()) {
      impl.encode_plain(normalized, at_start, ids);
      return;
    }
    for (const TextSegment& segment : impl.normalized_matcher.split(normalized, options.parse_special)) {
      if (segment.token >= 0) {
        ids.push_back(segment.token);
      } else {
        impl.encode_plain(std::string_view(normalized).substr(segment.begin, segment.end - segment.begin),
                          at_start && segment.begin == 0, ids);
      }
    }
  };
  if (impl.raw_matcher.empty()) {
    encode_range(text, true);
  } else {
    for (const TextSegment& segment : impl.raw_matcher.split(text, options.parse_special)) {
      if (segment.token >= 0) {
        ids.push_back(segment.token);
      } else {
        encode_range(text.substr(segment.begin, segment.end - segment.begin), segment.begin == 0);
      }
    }
  }
  if (options.add_eos.value_or(impl.add_eos)) {
    KVSAFE_CHECK(impl.eos_id, impl.source, ": EOS requested but the tokenizer has no eos token");
    ids.push_back(*impl.eos_id);
  }
  return ids;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, const DecodeOptions& options) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const TokenId id : ids) {
    const std::string& piece = token_text(id);
    if (options.skip_special && impl_->special[static_cast<std::size_t>(id)]) continue;
    tokens.push_back(piece);
  }
  return run_decoder(impl_->decoder, std::move(tokens));
}

std::size_t Tokenizer::vocab_size() const {
  return impl_->pieces.size();
}

const std::string& Tokenizer::token_text(TokenId id) const {
  KVSAFE_CHECK(id >= 0 && static_cast<std::size_t>(id) < impl_->pieces.size(), impl_->source, ": token id ", id,
               " is out of range [0, ", impl_->pieces.size(), ")");
  return impl_->pieces[static_cast<std::size_t>(id)];
}

std::optional<TokenId> Tokenizer::token_id(std::string_view text) const {
  const auto it = impl_->piece_to_id.find(text);
  if (it == impl_->piece_to_id.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_special(TokenId id) const {
  token_text(id);  // range check
  return impl_->special[static_cast<std::size_t>(id)];
}

std::optional<TokenId> Tokenizer::bos_id() const {
  return impl_->bos_id;
}
std::optional<TokenId> Tokenizer::eos_id() const {
  return impl_->eos_id;
}
std::optional<TokenId> Tokenizer::pad_id() const {
  return impl_->pad_id;
}
bool Tokenizer::adds_bos() const {
  return impl_->add_bos;
}
bool Tokenizer::adds_eos() const {
  return impl_->add_eos;
}
const std::string& Tokenizer::source() const {
  return impl_->source;
}

}  // namespace kvsafe::engine
