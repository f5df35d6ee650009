#include "eval/output_degeneracy.h"

#include <string_view>
#include <unordered_set>
#include <vector>

namespace kvsafe::eval {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

Degeneracy assess_degeneracy(std::string_view output, const DegeneracyOptions& options) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < output.size()) {
    while (i < output.size() && is_space(output[i])) ++i;
    const std::size_t start = i;
    while (i < output.size() && !is_space(output[i])) ++i;
    if (i > start) words.push_back(output.substr(start, i - start));
  }
  Degeneracy result;
  result.words = static_cast<std::int64_t>(words.size());
  const auto n = static_cast<std::size_t>(options.ngram > 0 ? options.ngram : 1);
  if (words.size() >= n) {
    std::unordered_set<std::string> distinct;
    const std::size_t total = words.size() - n + 1;
    for (std::size_t start = 0; start < total; ++start) {
      std::string key;
      for (std::size_t k = 0; k < n; ++k) {
        key += words[start + k];
        key += '\x1f';  // a separator no word contains: "a b" + "c" never equals "a" + "b c"
      }
      distinct.insert(std::move(key));
    }
    result.distinct_ngram_ratio = static_cast<double>(distinct.size()) / static_cast<double>(total);
  }
  if (words.empty()) {
    result.degenerate = true;
    result.reason = "empty";
  } else if (result.words < options.min_words) {
    result.degenerate = true;
    result.reason = "too_short";
  } else if (result.words >= options.min_words_for_ratio && result.distinct_ngram_ratio < options.min_distinct_ratio) {
    result.degenerate = true;
    result.reason = "repetitive";
  }
  return result;
}

}  // namespace kvsafe::eval
