#pragma once
// UTF-8 helpers shared by the tokenizer: validation, code point iteration, the lossy
// repair HF tokenizers applies when decoded bytes are not valid UTF-8, and GPT-2's
// byte-to-unicode alphabet (byte-level BPE vocabularies are written in it).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvsafe::engine {

// Length of the UTF-8 sequence that starts with `lead` (1..4); 1 for a stray byte, so
// callers always make progress.
int utf8_sequence_length(std::uint8_t lead);

// Byte offset of the first invalid UTF-8 sequence (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or nullopt when `text` is valid.
std::optional<std::size_t> find_invalid_utf8(std::string_view text);

// Decodes the code point starting at text[offset] (which must be valid UTF-8) and
// advances offset past it.
char32_t next_code_point(std::string_view text, std::size_t& offset);

// `text` with every occurrence of `pattern` replaced by `content`, left to right, without
// overlaps (HF's Replace normalizer and decoder with a string pattern); an empty pattern
// changes nothing.
std::string replace_all(std::string_view text, std::string_view pattern, std::string_view content);

// Appends the UTF-8 encoding of `cp`.
void append_utf8(std::string& out, char32_t cp);

// Replaces every maximal invalid subsequence by U+FFFD, as Rust's
// String::from_utf8_lossy does (HF's ByteLevel decoder ends with it).
std::string utf8_lossy(std::string_view bytes);

// Number of bytes at the end of `bytes` that form the start of a UTF-8 sequence still
// missing its continuation bytes (0..3). A streaming decoder holds these back.
std::size_t incomplete_utf8_suffix(std::string_view bytes);

// Unicode White_Space, as Rust's char::is_whitespace (HF's strip rules use it).
bool is_unicode_whitespace(char32_t cp);

// GPT-2's reversible byte <-> printable code point table (openai/gpt-2 encoder.py,
// bytes_to_unicode): printable Latin-1 bytes map to themselves, the rest to U+0100...
char32_t byte_level_char(std::uint8_t byte);

// The raw bytes a byte-level token stands for, or nullopt when some character of
// `piece` is outside the 256-character alphabet (HF's decoder then keeps the text as is).
std::optional<std::string> byte_level_decode(std::string_view piece);

// The byte-level spelling of raw bytes (inverse of byte_level_decode).
std::string byte_level_encode(std::string_view bytes);

}  // namespace kvsafe::engine
