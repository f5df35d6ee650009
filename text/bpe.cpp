#include "text/bpe.h"

#include <queue>

#include "text/unicode_utf8.h"

namespace kvsafe::engine {
namespace {

struct Symbol {
  TokenId id = -1;
  std::int32_t prev = -1;
  std::int32_t next = -1;
  bool alive = true;
};

struct Candidate {
  std::int32_t rank = 0;
  std::int32_t pos = 0;  // index of the left symbol
  TokenId result = -1;
  // std::priority_queue pops the largest: invert so the lowest (rank, pos) comes first.
  bool operator<(const Candidate& other) const { return rank != other.rank ? rank > other.rank : pos > other.pos; }
};

}  // namespace

Bpe::Bpe(StringToId vocab, const std::vector<BpeMerge>& merges, const std::array<TokenId, 256>& byte_tokens,
         const BpeOptions& options)
    : vocab_(std::move(vocab)), byte_tokens_(byte_tokens), options_(options) {
  merges_.reserve(merges.size());
  for (const BpeMerge& merge : merges) {
    // NOTE: the first rule for a pair wins, as in HF (later duplicates never apply).
    merges_.try_emplace(pair_key(merge.left, merge.right), MergeValue{merge.rank, merge.result});
  }
}

void Bpe::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const auto it = vocab_.find(word); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = options_.cache_capacity > 0 && word.size() <= options_.max_cached_word;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (const auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    // A full cache starts over: simpler than LRU, and the frequent words return at once.
    if (cache_.size() >= options_.cache_capacity) cache_.clear();
    cache_.try_emplace(std::string(word), out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  }
}

void Bpe::merge_word(std::string_view word, std::vector<TokenId>& out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto push = [&](TokenId id) {
    const auto index = static_cast<std::int32_t>(symbols.size());
    if (index > 0) symbols.back().next = index;
    symbols.push_back({id, index - 1, -1, true});
  };

  // Initial symbols: bytes, or characters with byte fallback / unk (HF BPE::merge_word).
  bool pending_unk = false;  // the last symbol is an unk that fuse_unk may extend
  std::size_t offset = 0;
  while (offset < word.size()) {
    const std::size_t length =
        options_.byte_symbols
            ? 1
            : std::min<std::size_t>(
                  word.size() - offset,
                  static_cast<std::size_t>(utf8_sequence_length(static_cast<std::uint8_t>(word[offset]))));
    const std::string_view piece = word.substr(offset, length);
    offset += length;
    TokenId id = -1;
    if (options_.byte_symbols) {
      id = byte_tokens_[static_cast<std::uint8_t>(piece[0])];
    } else if (const auto it = vocab_.find(piece); it != vocab_.end()) {
      id = it->second;
    }
    if (id >= 0) {
      push(id);
      pending_unk = false;
      continue;
    }
    if (options_.byte_fallback) {
      bool all_bytes = true;
      for (const char c : piece) all_bytes = all_bytes && byte_tokens_[static_cast<std::uint8_t>(c)] >= 0;
      if (all_bytes) {
        for (const char c : piece) push(byte_tokens_[static_cast<std::uint8_t>(c)]);
        pending_unk = false;
        continue;
      }
    }
    if (!options_.unk_id) continue;  // NOTE: HF drops the character when the model has no unk token
    if (!(options_.fuse_unk && pending_unk)) push(*options_.unk_id);
    pending_unk = true;
  }
  if (symbols.empty()) return;

  const auto lookup = [&](std::int32_t left) -> const MergeValue* {
    const Symbol& a = symbols[static_cast<std::size_t>(left)];
    if (a.next < 0) return nullptr;
    const auto it = merges_.find(pair_key(a.id, symbols[static_cast<std::size_t>(a.next)].id));
    return it == merges_.end() ? nullptr : &it->second;
  };

  std::vector<Candidate> storage;
  storage.reserve(symbols.size());
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(storage));
  for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i) {
    if (const MergeValue* m = lookup(i)) queue.push({m->rank, i, m->result});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<std::size_t>(top.pos)];
    if (!left.alive || left.next < 0) continue;
    // A stale candidate: the pair changed since it was queued.
    const MergeValue* current = lookup(top.pos);
    if (current == nullptr || current->result != top.result) continue;
    Symbol& right = symbols[static_cast<std::size_t>(left.next)];
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<std::size_t>(right.next)].prev = top.pos;
    if (left.prev >= 0) {
      if (const MergeValue* m = lookup(left.prev)) queue.push({m->rank, left.prev, m->result});
    }
    if (const MergeValue* m = lookup(top.pos)) queue.push({m->rank, top.pos, m->result});
  }
  for (const Symbol& symbol : symbols) {
    if (symbol.alive) out.push_back(symbol.id);
  }
}

}  // namespace kvsafe::engine
