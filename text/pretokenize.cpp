#include "text/pretokenize.h"

#include "common/error.h"

namespace kvsafe::engine {

struct PreTokenizer::Compiled {
  PreTokenizerStep step;
  std::unique_ptr<TokenizerRegex> regex;  // kSplit (regex), kByteLevel (use_regex), kDigits, kWhitespaceSplit
};

namespace {

struct Span {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool is_match = false;
};

// HF NormalizedString::split: matches and the gaps between them, then merged or dropped
// by the behavior (tokenizers/src/tokenizer/normalizer.rs).
std::vector<Span> apply_behavior(std::vector<Span> spans, SplitBehavior behavior) {
  std::vector<Span> out;  // is_match now means "remove"
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (Span s : spans) out.push_back({s.begin, s.end, false});
      return out;
    case SplitBehavior::kRemoved:
      return spans;
    case SplitBehavior::kContiguous:
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      return out;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      return out;
    case SplitBehavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back({it->begin, it->end, false});
        }
        previous_match = it->is_match;
      }
      return {out.rbegin(), out.rend()};
  }
  return out;
}

void emit(std::string_view text, bool at_start, const std::vector<Span>& spans, std::vector<PreToken>& out) {
  for (const Span& s : spans) {
    if (s.is_match || s.end <= s.begin) continue;  // removed, or empty (HF drops empty pieces)
    out.push_back({std::string(text.substr(s.begin, s.end - s.begin)), at_start && s.begin == 0});
  }
}

// Matches of a literal pattern, non-overlapping, left to right.
void literal_matches(std::string_view text, std::string_view pattern, std::vector<Span>& spans) {
  if (pattern.empty()) return;
  std::size_t prev = 0;
  for (std::size_t at = text.find(pattern); at != std::string_view::npos; at = text.find(pattern, prev)) {
    if (at != prev) spans.push_back({prev, at, false});
    spans.push_back({at, at + pattern.size(), true});
    prev = at + pattern.size();
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), false});
}

void regex_matches(std::string_view text, const TokenizerRegex& regex, std::vector<Span>& spans) {
  std::size_t prev = 0;
  regex.for_each_match(text, [&](std::size_t begin, std::size_t end) {
    if (begin != prev) spans.push_back({prev, begin, false});
    spans.push_back({begin, end, true});
    prev = end;
  });
  if (prev != text.size()) spans.push_back({prev, text.size(), false});
}

std::string replace_spaces(std::string_view text, std::string_view replacement) {
  std::string out;
  out.reserve(text.size() + 8);
  for (const char c : text) {
    if (c == ' ') {
      out.append(replacement);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

PreTokenizer::PreTokenizer(const std::vector<PreTokenizerStep>& steps, std::string_view source) {
  for (const PreTokenizerStep& step : steps) {
    auto compiled = std::make_unique<Compiled>();
    compiled->step = step;
    switch (step.kind) {
      case PreTokenizerStep::Kind::kSplit:
        if (step.pattern_is_regex) compiled->regex = std::make_unique<TokenizerRegex>(step.pattern, source);
        break;
      case PreTokenizerStep::Kind::kByteLevel:
        byte_level_ = true;
        if (step.use_regex) compiled->regex = std::make_unique<TokenizerRegex>(kGpt2Pattern, source);
        break;
      case PreTokenizerStep::Kind::kDigits:
        // HF Digits splits on char::is_numeric, one match per character: \p{N}.
        compiled->regex = std::make_unique<TokenizerRegex>(R"(\p{N})", source);
        break;
      case PreTokenizerStep::Kind::kWhitespaceSplit:
        compiled->regex = std::make_unique<TokenizerRegex>(R"(\s)", source);
        break;
      case PreTokenizerStep::Kind::kMetaspace:
        KVSAFE_CHECK(!step.replacement.empty(), source, ": Metaspace replacement is empty");
        break;
    }
    steps_.push_back(std::move(compiled));
  }
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::apply(const Compiled& compiled, PreToken&& piece, std::vector<PreToken>& out) const {
  const PreTokenizerStep& step = compiled.step;
  std::vector<Span> spans;
  switch (step.kind) {
    case PreTokenizerStep::Kind::kSplit: {
      if (compiled.regex) {
        regex_matches(piece.text, *compiled.regex, spans);
      } else {
        literal_matches(piece.text, step.pattern, spans);
      }
      if (step.invert) {
        for (Span& s : spans) s.is_match = !s.is_match;
      }
      emit(piece.text, piece.at_start, apply_behavior(std::move(spans), step.behavior), out);
      return;
    }
    case PreTokenizerStep::Kind::kByteLevel: {
      if (step.add_prefix_space && (piece.text.empty() || piece.text.front() != ' ')) piece.text.insert(0, " ");
      if (!compiled.regex) {
        if (!piece.text.empty()) out.push_back(std::move(piece));
        return;
      }
      regex_matches(piece.text, *compiled.regex, spans);
      emit(piece.text, piece.at_start, apply_behavior(std::move(spans), SplitBehavior::kIsolated), out);
      return;
    }
    case PreTokenizerStep::Kind::kDigits:
      regex_matches(piece.text, *compiled.regex, spans);
      emit(piece.text, piece.at_start,
           apply_behavior(std::move(spans),
                          step.individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous),
           out);
      return;
    case PreTokenizerStep::Kind::kWhitespaceSplit:
      regex_matches(piece.text, *compiled.regex, spans);
      emit(piece.text, piece.at_start, apply_behavior(std::move(spans), SplitBehavior::kRemoved), out);
      return;
    case PreTokenizerStep::Kind::kMetaspace: {
      std::string text = replace_spaces(piece.text, step.replacement);
      const bool starts_with_replacement = text.compare(0, step.replacement.size(), step.replacement) == 0;
      const bool prepend = step.prepend_scheme == PrependScheme::kAlways ||
                           (step.prepend_scheme == PrependScheme::kFirst && piece.at_start);
      if (prepend && !starts_with_replacement) text.insert(0, step.replacement);
      if (!step.split) {
        if (!text.empty()) out.push_back({std::move(text), piece.at_start});
        return;
      }
      literal_matches(text, step.replacement, spans);
      emit(text, piece.at_start, apply_behavior(std::move(spans), SplitBehavior::kMergedWithNext), out);
      return;
    }
  }
}

void PreTokenizer::split(std::string_view text, bool at_start, std::vector<PreToken>& words) const {
  if (steps_.empty()) {
    if (!text.empty()) words.push_back({std::string(text), at_start});
    return;
  }
  std::vector<PreToken> current;
  current.push_back({std::string(text), at_start});
  std::vector<PreToken> next;
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    std::vector<PreToken>& target = i + 1 == steps_.size() ? words : next;
    for (PreToken& piece : current) apply(*steps_[i], std::move(piece), target);
    if (i + 1 < steps_.size()) {
      current.swap(next);
      next.clear();
    }
  }
}

}  // namespace kvsafe::engine
