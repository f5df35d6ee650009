#include "text/tokenizer_added_tokens.h"

#include <unicode/uchar.h>

#include <algorithm>

#include "text/unicode_utf8.h"

namespace kvsafe::engine {
namespace {

// HF is_word_character: char::is_alphanumeric() || '_'.
bool is_word_character(char32_t cp) {
  if (cp == '_') return true;
  const auto c = static_cast<UChar32>(cp);
  return u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || (U_GET_GC_MASK(c) & U_GC_N_MASK) != 0;
}

char32_t last_code_point(std::string_view text) {
  std::size_t start = text.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  std::size_t offset = start;
  return next_code_point(text, offset);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)), by_first_byte_(256) {
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](std::size_t a, std::size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

std::vector<TextSegment> AddedTokenMatcher::split(std::string_view text, bool parse_special) const {
  std::vector<TextSegment> out;
  std::size_t start_offset = 0;  // end of the last emitted range
  std::size_t i = 0;
  while (i < text.size()) {
    const auto& candidates = by_first_byte_[static_cast<unsigned char>(text[i])];
    const AddedToken* found = nullptr;
    for (const std::size_t index : candidates) {
      const std::string& content = tokens_[index].content;
      if (text.compare(i, content.size(), content) == 0) {
        found = &tokens_[index];
        break;
      }
    }
    if (found == nullptr) {
      ++i;
      continue;
    }
    std::size_t start = i;
    std::size_t stop = i + found->content.size();
    i = stop;  // NOTE: like HF, a match that is then skipped is not re-scanned for shorter tokens
    if (found->special && !parse_special) continue;
    if (found->single_word) {
      const bool start_space = start == 0 || !is_word_character(last_code_point(text.substr(0, start)));
      std::size_t after = stop;
      const bool stop_space = stop == text.size() || !is_word_character(next_code_point(text, after));
      if (!start_space || !stop_space) continue;
    }
    if (found->lstrip) {
      std::size_t new_start = start;
      while (new_start > start_offset) {
        std::size_t prev = new_start - 1;
        while (prev > 0 && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80) --prev;
        std::size_t offset = prev;
        if (!is_unicode_whitespace(next_code_point(text, offset))) break;
        new_start = prev;
      }
      start = new_start;
    }
    if (found->rstrip) {
      while (stop < text.size()) {
        std::size_t offset = stop;
        if (!is_unicode_whitespace(next_code_point(text, offset))) break;
        stop = offset;
      }
      i = stop;
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, found->id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
  return out;
}

}  // namespace kvsafe::engine
