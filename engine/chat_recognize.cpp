// Recognizing a model's chat template string (tokenizer_config.json `chat_template`, GGUF
// `tokenizer.chat_template`): first by the hash of the official template, then by the
// family's distinctive markers.

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/sha256.h"
#include "engine/chat_family.h"
#include "engine/chat_template.h"

namespace kvsafe::engine {
namespace {

struct KnownTemplate {
  std::string_view normalized_sha256;
  std::string_view family;
  std::string_view source;  // where this exact string was seen
};

// Normalized sha256 (chat_template_normalized_sha256) of official templates. The strings
// themselves are not kept here: tests/oracles/chat_template_oracle.py records each hash in
// the golden files (tests/engine/fixtures/chat_*.json) next to where the string came from.
constexpr std::array kKnownTemplates = {
    KnownTemplate{"e8d5b5a546d3f19df16a5320c614fab05bdc4edd50e850f1afd947b503ea41cf", "llama-2",
                  "meta-llama/Llama-2-*-chat-hf tokenizer_config.json"},
    KnownTemplate{"4f46ecd43418f216df8c26936c60e5d04bcc81db47db5d86fbe889f64212dd4c", "llama-3",
                  "meta-llama/Meta-Llama-3-*-Instruct tokenizer_config.json"},
    KnownTemplate{"26a59556925c987317ce5291811ba3b7f32ec4c647c400c6cc7e3a9993007ba7", "mistral-v0.2",
                  "mistralai/Mistral-7B-Instruct-v0.2 tokenizer_config.json (original release)"},
    KnownTemplate{"f0206845c9ebc3abb4735d44f286eb81ce99238ad2accc710c6fc60e6cb8ccc8", "qwen2",
                  "Qwen/Qwen2-*-Instruct tokenizer_config.json"},
    KnownTemplate{"5601fd7b9dac735cd1a9d029f73cbcf63a48f84b640df193dadc6ac6af980391", "phi-3",
                  "microsoft/Phi-3-mini-*-instruct tokenizer_config.json (July 2024)"},
    KnownTemplate{"1e51d5c0fec2f83da1953fb850b7b532b7da02d0dc35f9201e671e0b9a35a123", "gemma-2",
                  "google/gemma-2-*-it tokenizer_config.json"},
    KnownTemplate{"de9cde7d1b0ca0cc87459a6673e0d12fb89c070bdb24e4a30b6e4d187b226221", "smollm2",
                  "HuggingFaceTB/SmolLM2-*-Instruct, '\\n' escapes in the string literals"},
    KnownTemplate{"872be49dbb638044ad01b60388f48d469ff2980e5f0dccdc22ec907db54d0788", "smollm2",
                  "SmolLM2-135M-Instruct GGUF tokenizer.chat_template (literal newlines)"},
};

// A family's markers: every `all` substring present and no `none` substring. Tried in
// order, so more specific rules come first (Llama-2 before the Mistral [INST] rules,
// the ChatML defaults before plain ChatML).
struct MarkerRule {
  std::string_view family;
  std::vector<std::string_view> all{};
  std::vector<std::string_view> none{};
};

const std::vector<MarkerRule>& marker_rules() {
  static const std::vector<MarkerRule> rules = {
      {"mistral-small", {"[SYSTEM_PROMPT]", "[INST]"}, {}},
      {"llama-2", {"<<SYS>>", "[INST]"}, {}},
      {"mistral-v0.2", {"[INST] ", " [/INST]"}, {"[AVAILABLE_TOOLS]"}},
      {"mistral-v0.3", {"[INST]", "[/INST]"}, {}},
      {"llama-3.1", {"<|start_header_id|>", "Cutting Knowledge Date"}, {}},
      {"llama-3", {"<|start_header_id|>", "<|end_header_id|>"}, {}},
      {"gemma-2", {"<start_of_turn>", "<end_of_turn>"}, {}},
      {"smollm2", {"<|im_start|>", "named SmolLM"}, {}},
      {"qwen2.5", {"<|im_start|>", "You are Qwen, created by Alibaba Cloud."}, {}},
      {"yi", {"<|im_start|>user", "system_message is defined"}, {}},
      {"qwen2", {"<|im_start|>", "You are a helpful assistant."}, {}},
      {"chatml", {"<|im_start|>", "<|im_end|>"}, {}},
      {"phi-3.5", {"<|user|>", "<|end|>", "message['role'] == 'system' and message['content']"}, {}},
      {"phi-3", {"<|user|>", "<|end|>", "<|assistant|>"}, {}},
      {"olmo-2", {"<|user|>", "<|assistant|>"}, {"<|end|>"}},
      {"deepseek", {"'User: '", "'Assistant: '", "eos_token"}, {}},
  };
  return rules;
}

bool matches(std::string_view text, const MarkerRule& rule) {
  for (const std::string_view s : rule.all) {
    if (text.find(s) == std::string_view::npos) return false;
  }
  for (const std::string_view s : rule.none) {
    if (text.find(s) != std::string_view::npos) return false;
  }
  return true;
}

std::string_view normalize(std::string_view text, std::string& storage) {
  storage.clear();
  storage.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    storage.push_back(text[i]);
  }
  std::string_view view = storage;
  const auto first = view.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = view.find_last_not_of(" \t\r\n");
  return view.substr(first, last - first + 1);
}

}  // namespace

std::string chat_template_normalized_sha256(std::string_view template_text) {
  std::string storage;
  return sha256_hex(normalize(template_text, storage));
}

std::optional<ChatTemplate> ChatTemplate::try_recognize(std::string_view template_text) {
  std::string storage;
  const std::string_view normalized = normalize(template_text, storage);
  const std::string hash = sha256_hex(normalized);
  const std::string raw_hash = sha256_hex(template_text);
  for (const KnownTemplate& known : kKnownTemplates) {
    if (known.normalized_sha256 == hash) {
      return ChatTemplate(*chat::find_family(known.family), ChatTemplateMatch::kHash, raw_hash);
    }
  }
  for (const MarkerRule& rule : marker_rules()) {
    if (!matches(normalized, rule)) continue;
    if (rule.family == "chatml") {
      // NOTE: never ChatML silently: this template is not a known one and has no
      // default system prompt kvsafe knows of.
      spdlog::warn("chat template {} is not a known one; rendering it as plain ChatML (no default system prompt)",
                   raw_hash);
    }
    return ChatTemplate(*chat::find_family(rule.family), ChatTemplateMatch::kMarkers, raw_hash);
  }
  return std::nullopt;
}

ChatTemplate ChatTemplate::recognize(std::string_view template_text) {
  if (auto found = try_recognize(template_text)) return *std::move(found);
  std::string names;
  for (const std::string& name : chat_template_names()) names += (names.empty() ? "" : ", ") + name;
  throw InputError("unrecognized chat template (sha256 " + sha256_hex(template_text) +
                   "): it is neither a known official template nor has a known family's markers; "
                   "set chat_template to one of: " +
                   names);
}

}  // namespace kvsafe::engine
