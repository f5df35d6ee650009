#pragma once
// Python's string post-processing that the paper's code applies to prompts and answers
// (issue 20 item 5), byte for byte on UTF-8: str.strip() and transformers'
// clean_up_tokenization (what decode(..., clean_up_tokenization_spaces=True) does).

#include <string>
#include <string_view>

namespace kvsafe::text {

// Python's str.strip() with no argument: removes leading and trailing characters for which
// str.isspace() is true (ASCII \t \n \v \f \r and space, \x1c-\x1f, U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000). Malformed UTF-8 is left as is.
std::string python_strip(std::string_view text);

// transformers' PreTrainedTokenizerBase.clean_up_tokenization: the replacements " ." -> ".",
// " ?" -> "?", " !" -> "!", " ," -> ",", " ' " -> "'", " n't" -> "n't", " 'm" -> "'m", " 's" -> "'s",
// " 've" -> "'ve", " 're" -> "'re", each over the whole text in that order (str.replace).
std::string clean_up_tokenization(std::string_view text);

}  // namespace kvsafe::text
