#pragma once
// GGUF tokenizer metadata (the tokenizer.ggml.* keys llama.cpp writes) -> TokenizerData.
// The GGUF keeps only the vocabulary and a pre-tokenizer *name*; this file spells out
// what llama.cpp derives from them, in the form of the HF components of that family:
//   model "llama": SentencePiece BPE ordered by score, byte fallback, ▁ for spaces (with a
//                  leading ▁ unless add_space_prefix is false), <unk>/control tokens special;
//   model "gpt2":  byte-level BPE ordered by merge rank, with the pre-tokenizer that
//                  tokenizer.ggml.pre names (kGgufPreTokenizers below).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "text/tokenizer_data.h"

namespace kvsafe::engine {

class GgufFile;

// The tokenizer.ggml.* values of one GGUF file, as read (no interpretation yet).
struct GgufTokenizerMetadata {
  std::string source;                     // the GGUF file, for errors
  std::string model;                      // tokenizer.ggml.model: "llama" or "gpt2"
  std::string pre;                        // tokenizer.ggml.pre ("" when absent: "default")
  std::vector<std::string> tokens;        // tokenizer.ggml.tokens
  std::vector<float> scores;              // tokenizer.ggml.scores (required for "llama")
  std::vector<std::int64_t> token_types;  // tokenizer.ggml.token_type (optional)
  std::vector<std::string> merges;        // tokenizer.ggml.merges: "left right" (required for "gpt2")
  std::optional<std::int64_t> bos_id;     // tokenizer.ggml.bos_token_id
  std::optional<std::int64_t> eos_id;     // tokenizer.ggml.eos_token_id
  std::optional<std::int64_t> pad_id;     // tokenizer.ggml.padding_token_id
  std::optional<std::int64_t> unk_id;     // tokenizer.ggml.unknown_token_id
  std::optional<bool> add_bos;            // tokenizer.ggml.add_bos_token
  std::optional<bool> add_eos;            // tokenizer.ggml.add_eos_token
  std::optional<bool> add_space_prefix;   // tokenizer.ggml.add_space_prefix ("llama"; default true)
};

// The tokenizer.ggml.pre names understood, sorted (the error for others lists them).
std::vector<std::string> supported_gguf_pre_tokenizers();

// Interprets the metadata. Throws InputError naming the file and the key: missing
// tokens/scores/merges, ids out of range, invalid UTF-8 in the vocabulary, unknown
// model or pre-tokenizer names.
TokenizerData tokenizer_data_from_gguf(const GgufTokenizerMetadata& metadata);

// Reads the tokenizer.ggml.* keys of an open GGUF file (modelfile/gguf_reader.h).
GgufTokenizerMetadata read_gguf_tokenizer_metadata(const GgufFile& file, const std::string& source);

}  // namespace kvsafe::engine
