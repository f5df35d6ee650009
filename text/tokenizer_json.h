#pragma once
// HF tokenizer.json -> TokenizerData. Supports the BPE model with the normalizers,
// pre-tokenizers, post-processors and decoders that the paper's models use; anything
// else is refused with an error naming the file, the key and the supported types.

#include <filesystem>
#include <string>
#include <string_view>

#include "text/tokenizer_data.h"

namespace kvsafe::engine {

// Reads and parses `path`. Throws InputError naming the file and the key.
TokenizerData load_tokenizer_json(const std::filesystem::path& path);

// Parses tokenizer.json text; `source` names it in errors.
TokenizerData parse_tokenizer_json(std::string_view json_text, const std::string& source);

}  // namespace kvsafe::engine
