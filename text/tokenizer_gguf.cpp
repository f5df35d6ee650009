#include "text/tokenizer_gguf.h"

#include <algorithm>
#include <map>

#include "common/error.h"
#include "text/pretokenize.h"
#include "text/unicode_utf8.h"

namespace kvsafe::engine {
namespace {

// The HF pre-tokenizer of each family, keyed by the tokenizer.ggml.pre names llama.cpp's
// convert_hf_to_gguf.py writes. Regexes are those of the families' tokenizer.json files
// (llama.cpp src/llama-vocab.cpp lists the same ones).
constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct PreTokenizerRecipe {
  std::vector<PreTokenizerStep> steps{};
  std::vector<NormalizerStep> normalizer{};
  bool ignore_merges = false;  // llama.cpp sets it for Llama-3 (HF "ignore_merges": true)
  bool add_bos = false;        // the family's default when the GGUF has no add_bos_token
};

PreTokenizerStep split(std::string_view pattern) {
  return {.kind = PreTokenizerStep::Kind::kSplit,
          .pattern = std::string(pattern),
          .pattern_is_regex = true,
          .behavior = SplitBehavior::kIsolated};
}
PreTokenizerStep byte_level(bool use_regex) {
  return {.kind = PreTokenizerStep::Kind::kByteLevel, .add_prefix_space = false, .use_regex = use_regex};
}
PreTokenizerStep digits() {
  return {.kind = PreTokenizerStep::Kind::kDigits, .individual_digits = true};
}

const std::map<std::string, PreTokenizerRecipe>& recipes() {
  static const std::map<std::string, PreTokenizerRecipe> table = [] {
    std::map<std::string, PreTokenizerRecipe> t;
    const PreTokenizerRecipe gpt2{.steps = {byte_level(true)}};
    const PreTokenizerRecipe llama3{
        .steps = {split(kLlama3Pattern), byte_level(false)}, .ignore_merges = true, .add_bos = true};
    const PreTokenizerRecipe cl100k{.steps = {split(kLlama3Pattern), byte_level(false)}};
    const PreTokenizerRecipe qwen2{.steps = {split(kQwen2Pattern), byte_level(false)},
                                   .normalizer = {{.kind = NormalizerStep::Kind::kNfc}}};
    // SmolLM / StarCoder: Sequence[Digits(individual_digits), ByteLevel(use_regex)].
    const PreTokenizerRecipe starcoder{.steps = {digits(), byte_level(true)}};
    const PreTokenizerRecipe deepseek_llm{
        .steps = {split(R"([\r\n])"),
                  split(
                      "\\s?["
                      "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"
                      "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}"
                      "-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}"
                      "-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}"
                      "-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}"
                      "-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
                      "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}"
                      "-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}"
                      "-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}"
                      "\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}"
                      "\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}"
                      "\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}"
                      "-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}"
                      "-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}"
                      "\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}"
                      "]+"),
                  split("\\s?[!-/:-~！-／：-～‘-‟　-。]+"), split(R"(\s+$)"), split("[一-龥ࠀ-一가-퟿]+"),
                  split(R"(\p{N}+)"), byte_level(false)},
        .add_bos = true};
    const PreTokenizerRecipe deepseek_coder{
        .steps = {split(R"([\r\n])"), split(R"(\s?\p{L}+)"), split(R"(\s?\p{P}+)"), split("[一-龥ࠀ-一가-퟿]+"),
                  split(R"(\p{N})"), byte_level(false)},
        .add_bos = true};
    for (const char* name : {"default", "gpt2", "gpt-2", "olmo", "mpt", "jais"}) t[name] = gpt2;
    for (const char* name : {"llama3", "llama-v3", "llama-bpe", "falcon3", "smaug-bpe"}) t[name] = llama3;
    for (const char* name : {"dbrx", "chatglm-bpe"}) t[name] = cl100k;
    for (const char* name : {"qwen2", "stablelm2", "deepseek-r1-qwen"}) t[name] = qwen2;
    for (const char* name : {"smollm", "starcoder", "refact", "codeshell"}) t[name] = starcoder;
    t["deepseek-llm"] = deepseek_llm;
    t["deepseek-coder"] = deepseek_coder;
    return t;
  }();
  return table;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::optional<TokenId> checked_id(const GgufTokenizerMetadata& m, std::optional<std::int64_t> id, const char* key) {
  // NOTE: llama.cpp writes -1 (read back as 0xFFFFFFFF from a u32) for "no such token".
  if (!id || *id == -1 || *id == 0xFFFFFFFFLL) return std::nullopt;
  KVSAFE_CHECK(*id >= 0 && static_cast<std::size_t>(*id) < m.tokens.size(), m.source, ": ", key, " = ", *id,
               " is out of range: the vocabulary (tokenizer.ggml.tokens) has ", m.tokens.size(), " tokens");
  return static_cast<TokenId>(*id);
}

}  // namespace

std::vector<std::string> supported_gguf_pre_tokenizers() {
  std::vector<std::string> names;
  for (const auto& [name, recipe] : recipes()) names.push_back(name);
  return names;
}

TokenizerData tokenizer_data_from_gguf(const GgufTokenizerMetadata& m) {
  KVSAFE_CHECK(!m.model.empty(), m.source, ": missing key tokenizer.ggml.model");
  KVSAFE_CHECK(m.model == "llama" || m.model == "gpt2", m.source, ": tokenizer.ggml.model = \"", m.model,
               "\" is not supported (supported: llama, gpt2)");
  KVSAFE_CHECK(!m.tokens.empty(), m.source, ": missing or empty key tokenizer.ggml.tokens");
  for (std::size_t i = 0; i < m.tokens.size(); ++i) {
    const auto bad = find_invalid_utf8(m.tokens[i]);
    KVSAFE_CHECK(!bad, m.source, ": tokenizer.ggml.tokens[", i, "] is not valid UTF-8 (byte ", bad.value_or(0), ")");
  }
  KVSAFE_CHECK(m.token_types.empty() || m.token_types.size() == m.tokens.size(), m.source,
               ": tokenizer.ggml.token_type has ", m.token_types.size(), " entries for ", m.tokens.size(), " tokens");

  TokenizerData data;
  data.source = m.source;
  data.tokens = m.tokens;
  data.unk_id = checked_id(m, m.unk_id, "tokenizer.ggml.unknown_token_id");
  data.bos_id = checked_id(m, m.bos_id, "tokenizer.ggml.bos_token_id");
  data.eos_id = checked_id(m, m.eos_id, "tokenizer.ggml.eos_token_id");
  data.pad_id = checked_id(m, m.pad_id, "tokenizer.ggml.padding_token_id");
  data.kinds.reserve(m.tokens.size());
  for (std::size_t i = 0; i < m.token_types.size(); ++i) {
    const std::int64_t type = m.token_types[i];
    KVSAFE_CHECK(type >= 0 && type <= 6, m.source, ": tokenizer.ggml.token_type[", i, "] = ", type,
                 " is not a token type (0..6)");
    data.kinds.push_back(type == 0 ? TokenKind::kNormal : static_cast<TokenKind>(type));
  }
  if (data.kinds.empty()) data.kinds.assign(m.tokens.size(), TokenKind::kNormal);
  // Control, unknown and user-defined tokens are matched verbatim in text, as llama.cpp's
  // tokenizer_st_partition does; only user-defined ones without parse_special.
  for (std::size_t i = 0; i < data.kinds.size(); ++i) {
    const TokenKind kind = data.kinds[i];
    if (kind != TokenKind::kControl && kind != TokenKind::kUnknown && kind != TokenKind::kUserDefined) continue;
    if (m.tokens[i].empty()) continue;
    data.added_tokens.push_back(
        {.id = static_cast<TokenId>(i), .content = m.tokens[i], .special = kind != TokenKind::kUserDefined});
  }

  if (m.model == "llama") {
    KVSAFE_CHECK(m.scores.size() == m.tokens.size(), m.source, ": tokenizer.ggml.scores has ", m.scores.size(),
                 " entries for ", m.tokens.size(), " tokens (SentencePiece BPE needs one score per token)");
    data.bpe = BpeKind::kScores;
    data.scores = m.scores;
    data.byte_fallback = true;
    const bool space_prefix = m.add_space_prefix.value_or(true);
    if (space_prefix) data.normalizer.push_back({.kind = NormalizerStep::Kind::kPrepend, .content = "\u2581"});
    data.normalizer.push_back(
        {.kind = NormalizerStep::Kind::kReplace, .pattern = " ", .pattern_is_regex = false, .content = "\u2581"});
    data.decoder.push_back({.kind = DecoderStep::Kind::kReplace, .pattern = "\u2581", .content = " "});
    data.decoder.push_back({.kind = DecoderStep::Kind::kByteFallback});
    data.decoder.push_back({.kind = DecoderStep::Kind::kFuse});
    if (space_prefix) {
      data.decoder.push_back({.kind = DecoderStep::Kind::kStrip, .content = " ", .strip_start = 1, .strip_stop = 0});
    }
    data.add_bos = m.add_bos.value_or(true);
  } else {
    KVSAFE_CHECK(!m.merges.empty(), m.source,
                 ": missing or empty key tokenizer.ggml.merges (byte-level BPE needs its merges)");
    data.bpe = BpeKind::kMergeRanks;
    data.merges.reserve(m.merges.size());
    for (std::size_t i = 0; i < m.merges.size(); ++i) {
      const std::string& merge = m.merges[i];
      const std::size_t space = merge.find(' ');
      KVSAFE_CHECK(space != std::string::npos && space > 0 && space + 1 < merge.size() &&
                       merge.find(' ', space + 1) == std::string::npos,
                   m.source, ": tokenizer.ggml.merges[", i, "] = \"", merge, "\" is not \"left right\"");
      data.merges.emplace_back(merge.substr(0, space), merge.substr(space + 1));
    }
    const std::string pre = m.pre.empty() ? "default" : m.pre;
    const auto it = recipes().find(pre);
    KVSAFE_CHECK(it != recipes().end(), m.source, ": tokenizer.ggml.pre = \"", pre,
                 "\" is not a supported pre-tokenizer (supported: ", join(supported_gguf_pre_tokenizers()), ")");
    data.pre_tokenizer = it->second.steps;
    data.normalizer = it->second.normalizer;
    data.ignore_merges = it->second.ignore_merges;
    data.decoder.push_back({.kind = DecoderStep::Kind::kByteLevel});
    data.add_bos = m.add_bos.value_or(it->second.add_bos);
  }
  data.add_eos = m.add_eos.value_or(false);
  if (data.add_bos && !data.bos_id) {
    KVSAFE_CHECK(false, m.source, ": tokenizer.ggml.add_bos_token is set but tokenizer.ggml.bos_token_id is missing");
  }
  if (data.add_eos && !data.eos_id) {
    KVSAFE_CHECK(false, m.source, ": tokenizer.ggml.add_eos_token is set but tokenizer.ggml.eos_token_id is missing");
  }
  return data;
}

}  // namespace kvsafe::engine
