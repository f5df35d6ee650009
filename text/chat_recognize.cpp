// Recognizing a model's chat template string (tokenizer_config.json `chat_template`, GGUF
// `tokenizer.chat_template`): first by the hash of the official template, then by the
// family's distinctive markers.

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/sha256.h"
#include "text/chat_family.h"
#include "text/chat_template.h"

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
    // NOTE: Mixtral-8x7B-Instruct-v0.1's original template is this very string; it renders
    // identically under "mixtral" (same renderer), so one entry serves both.
    KnownTemplate{"26a59556925c987317ce5291811ba3b7f32ec4c647c400c6cc7e3a9993007ba7", "mistral-v0.2",
                  "mistralai/Mistral-7B-Instruct-v0.2 and Mixtral-8x7B-Instruct-v0.1 tokenizer_config.json "
                  "(original releases)"},
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
    KnownTemplate{"93c0e9aa3629bbd77e68dbc0f5621f6e6b23aa8d74b932595cdb8d64684526d7", "llama-3.1",
                  "meta-llama/Llama-3.1-8B-Instruct tokenizer_config.json (date_string default '26 Jul 2024')"},
    KnownTemplate{"cafb64e0e9e5fd2503054b3479593fae39cbdfd52338ce8af9bb4664a8eb05bd", "mistral-v0.3",
                  "mistralai/Mistral-7B-Instruct-v0.3 tokenizer_config.json (V3 template with tools), as in its GGUFs"},
    KnownTemplate{"e4be53fbaa398dbaed552c35bbd5f3a2bbe31f5456c83681790fc3dad9e3a70e", "mistral-small",
                  "mistralai/Mistral-Small-3.1-24B-Instruct-2503 (llama.cpp models/templates copy)"},
    KnownTemplate{"55b2f4a26ac9ee719330a61a0c39d9e538b0e9322212f048326318cff4f8674a", "qwen2.5",
                  "Qwen/Qwen2.5-*-Instruct tokenizer_config.json"},
    KnownTemplate{"4e9918361c284a93880606d182d64da6a9fe97cdc1f5c5a78c1c8840444246fc", "qwen2.5",
                  "Qwen2.5-*-Instruct GGUF tokenizer.chat_template ('{{' '}}' around the tool-call example)"},
    KnownTemplate{"78d976a442bcde2f0be15aafbb8e3050e1104f86732266f68403251b89982a90", "phi-3.5",
                  "microsoft/Phi-3.5-mini-instruct tokenizer_config.json"},
    KnownTemplate{"91aa728ae59c8e30443382f44f48d594b5f7afe91a449c0e5ed0e920a71d60a2", "yi",
                  "01-ai/Yi-1.5-*-Chat tokenizer_config.json"},
    KnownTemplate{"8aeba567270fa9a8d5372caf4b04affea947c4421d96adc01e3ff94021b0ae8e", "deepseek",
                  "deepseek-ai/deepseek-llm-7b-chat tokenizer_config.json"},
    KnownTemplate{"fe689ffbd6a4e2d0532d7480696b065b10e0e1eff3f9b9fc4bea415761e4bf4a", "olmo-2",
                  "allenai/OLMo-2-1124-7B-Instruct tokenizer.chat_template (Tulu 3 format with bos_token)"},
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

namespace chat {

std::optional<std::string_view> known_template_family(std::string_view normalized_sha256) {
  for (const KnownTemplate& known : kKnownTemplates) {
    if (known.normalized_sha256 == normalized_sha256) return known.family;
  }
  return std::nullopt;
}

}  // namespace chat

std::string chat_template_normalized_sha256(std::string_view template_text) {
  std::string storage;
  return sha256_hex(normalize(template_text, storage));
}

std::optional<ChatTemplate> ChatTemplate::try_recognize(std::string_view template_text) {
  std::string storage;
  const std::string_view normalized = normalize(template_text, storage);
  const std::string hash = sha256_hex(normalized);
  const std::string raw_hash = sha256_hex(template_text);
  if (const auto family = chat::known_template_family(hash)) {
    return ChatTemplate(*chat::find_family(*family), ChatTemplateMatch::kHash, raw_hash);
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
