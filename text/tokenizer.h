#pragma once
// Tokenizer: text <-> token ids exactly as the model's own tokenizer does it. One
// implementation covers byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM2, OLMo-2) and
// SentencePiece-style BPE with byte fallback and the ▁ space marker (Llama-2, Mistral,
// Gemma-2, Phi-3, Yi), configured by a TokenizerData (text/tokenizer_data.h) that
// comes from an HF tokenizer.json or from GGUF metadata.
//
// Pipeline of encode(): added tokens are cut out of the raw text first; each remaining
// range is normalized, pre-tokenized into words and each word merged by BPE; then the
// model's BOS/EOS are added. decode() maps ids to their pieces and runs the decoder
// chain. The tests compare both directions with HF `tokenizers` (tests/oracles/).

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer_data.h"

namespace kvsafe::engine {

struct EncodeOptions {
  std::optional<bool> add_bos{};  // prepend BOS; nullopt: as the model's configuration says
  std::optional<bool> add_eos{};  // append EOS; nullopt: as the model's configuration says
  bool parse_special = false;     // special tokens' text in the input becomes those tokens; false: plain text
};

struct DecodeOptions {
  bool skip_special = false;  // leave special (control) tokens out of the text
};

class Tokenizer {
 public:
  // Builds a tokenizer from a description. Throws InputError, naming data.source and the
  // key, when the description is inconsistent (ids out of range, merges of unknown
  // tokens, unknown step types...).
  static std::unique_ptr<Tokenizer> create(const TokenizerData& data);

  // Loads from an HF tokenizer.json, a directory holding one, or a GGUF file (by its
  // magic bytes). Throws InputError naming the file on any problem.
  static std::unique_ptr<Tokenizer> load(const std::filesystem::path& path);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of `text`, which must be valid UTF-8 (InputError with the byte offset
  // otherwise). Thread-safe.
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options = {}) const;

  // The text of `ids` (valid UTF-8: byte sequences that do not form UTF-8 become U+FFFD,
  // as HF does). Throws InputError for an id outside [0, vocab_size()).
  std::string decode(std::span<const TokenId> ids, const DecodeOptions& options = {}) const;

  // Number of ids: the model vocabulary plus added tokens beyond it.
  std::size_t vocab_size() const;
  // The token as the tokenizer file spells it (byte-level alphabet, ▁, <0xXX>); throws
  // InputError when out of range.
  const std::string& token_text(TokenId id) const;
  // The id of a token spelled as in the file, if any.
  std::optional<TokenId> token_id(std::string_view text) const;
  bool is_special(TokenId id) const;

  std::optional<TokenId> bos_id() const;
  std::optional<TokenId> eos_id() const;
  // The tokenizer's own pad token (tokenizer_config.json pad_token, GGUF
  // tokenizer.ggml.padding_token_id); none for many models, whose callers pad with EOS.
  std::optional<TokenId> pad_id() const;
  bool adds_bos() const;  // encode() adds BOS by default
  bool adds_eos() const;
  const std::string& source() const;  // the file it came from

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Incremental detokenization for streaming generation: feed ids one at a time and get
// the text that is final so far. Text is held back while the last tokens end inside a
// UTF-8 character (byte-level pieces or <0xXX> byte-fallback tokens), so the pieces
// returned by push() and finish(), concatenated, equal decode() of all the ids. Each
// push() decodes only the last few tokens (HF DecodeStream's prefix method).
class StreamingDecoder {
 public:
  // `tokenizer` must outlive the decoder.
  explicit StreamingDecoder(const Tokenizer& tokenizer, DecodeOptions options = {});

  // Text made final by `id`; empty while it is held back.
  std::string push(TokenId id);
  // Whatever is still held back (an incomplete character becomes U+FFFD); resets.
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  DecodeOptions options_;
  std::vector<TokenId> ids_;      // the window: context tokens, then tokens not yet emitted
  std::string prefix_;            // decode() of the context tokens
  std::size_t prefix_index_ = 0;  // ids_[0, prefix_index_) are context
};

}  // namespace kvsafe::engine
