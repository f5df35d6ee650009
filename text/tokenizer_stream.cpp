// StreamingDecoder (declared in text/tokenizer.h): HF DecodeStream's prefix method.
// Each push() decodes a small window (the last emitted token as context, then the
// pending ones) and emits what the window adds beyond the context, unless it ends in
// U+FFFD: then the last token ended inside a UTF-8 character and the text waits.

#include "text/tokenizer.h"

namespace kvsafe::engine {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

bool ends_with_replacement(const std::string& text) {
  return text.size() >= kReplacement.size() &&
         text.compare(text.size() - kReplacement.size(), std::string::npos, kReplacement) == 0;
}

// The part of `text` beyond `prefix`. NOTE: with the decoders of the supported models
// the window's text always extends the context's; should a decoder ever rewrite it, the
// common part is skipped instead of failing mid-generation.
std::string beyond(const std::string& text, const std::string& prefix) {
  if (text.compare(0, prefix.size(), prefix) == 0) return text.substr(prefix.size());
  std::size_t common = 0;
  while (common < text.size() && common < prefix.size() && text[common] == prefix[common]) ++common;
  return text.substr(common);
}

}  // namespace

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, DecodeOptions options)
    : tokenizer_(tokenizer), options_(options) {}

std::string StreamingDecoder::push(TokenId id) {
  tokenizer_.token_text(id);  // range check before the id joins the window
  ids_.push_back(id);
  const std::string text = tokenizer_.decode(ids_, options_);
  if (text.size() <= prefix_.size() || ends_with_replacement(text)) return {};
  std::string fresh = beyond(text, prefix_);
  // The newest tokens become the context of the next window.
  const std::size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tokenizer_.decode(ids_, options_);
  prefix_index_ = new_prefix_index;
  return fresh;
}

std::string StreamingDecoder::finish() {
  std::string rest;
  if (ids_.size() > prefix_index_) {
    const std::string text = tokenizer_.decode(ids_, options_);
    if (text.size() > prefix_.size()) rest = beyond(text, prefix_);
  }
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return rest;
}

}  // namespace kvsafe::engine
