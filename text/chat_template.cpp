// ChatTemplate: name lookup, conversation checks, the system prompt setting, and
// tokenization with the post-instruction positions. The family renderers live in
// chat_llama.cpp, chat_mistral.cpp, chat_chatml.cpp and chat_role_tags.cpp.

#include "text/chat_template.h"

#include <algorithm>
#include <utility>

#include "common/error.h"
#include "text/chat_family.h"

namespace kvsafe::engine {
namespace {

std::string known_names() {
  std::string out;
  for (const std::string& name : chat_template_names()) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string_view role_text(ChatRole role) {
  return role == ChatRole::kUser ? "user" : "assistant";
}

void check_conversation(const chat::Family& family, std::span<const ChatMessage> messages) {
  KVSAFE_CHECK(!messages.empty(), "chat template ", family.name, ": the conversation has no messages");
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const ChatRole expected = i % 2 == 0 ? ChatRole::kUser : ChatRole::kAssistant;
    KVSAFE_CHECK(messages[i].role == expected, "chat template ", family.name, ": message ", i, " has role ",
                 role_text(messages[i].role), " but ", role_text(expected),
                 " was expected; conversation roles must alternate user/assistant/user/assistant/... "
                 "starting with user (set the system prompt in the options, not as a message)");
  }
}

// Length of the common prefix of two id sequences.
std::size_t common_prefix(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return static_cast<std::size_t>(ia - a.begin());
}

// The template's BOS/EOS spelling must be a special token of the tokenizer, or the
// rendered text would tokenize into plain text pieces.
void check_special(const Tokenizer& tokenizer, std::string_view family, std::string_view what,
                   std::string_view spelling) {
  const auto id = tokenizer.token_id(spelling);
  KVSAFE_CHECK(id.has_value() && tokenizer.is_special(*id), "chat template ", family, " writes ", what, " \"", spelling,
               "\" but tokenizer ", tokenizer.source(),
               " has no such special token (wrong template for this model? set ChatOptions::", what,
               " to its spelling)");
}

}  // namespace

ChatTemplate::ChatTemplate(std::size_t family, ChatTemplateMatch match, std::string sha256)
    : family_(family), name_(chat::families()[family].name), match_(match), template_sha256_(std::move(sha256)) {}

ChatTemplate ChatTemplate::by_name(std::string_view name) {
  const auto family = chat::find_family(name);
  KVSAFE_CHECK(family.has_value(), "unknown chat template \"", name, "\"; known: ", known_names());
  return ChatTemplate(*family, ChatTemplateMatch::kName, "");
}

std::string_view ChatTemplate::default_system_prompt() const {
  return chat::families()[family_].default_system;
}

bool ChatTemplate::supports_system_prompt() const {
  return chat::families()[family_].system == chat::SystemSupport::kSupported;
}

bool ChatTemplate::writes_bos() const {
  return chat::families()[family_].writes_bos;
}

RenderedChat ChatTemplate::render(std::span<const ChatMessage> messages, const ChatOptions& options) const {
  const chat::Family& family = chat::families()[family_];
  check_conversation(family, messages);
  KVSAFE_CHECK(options.system_mode == SystemPromptMode::kCustom || options.system_prompt.empty(), "chat template ",
               family.name, ": a system prompt text is set but the system prompt mode is not custom");

  chat::RenderInput input{
      .messages = messages,
      .system = std::nullopt,
      .omit_default_system = options.system_mode == SystemPromptMode::kNone,
      .add_generation_prompt = options.add_generation_prompt,
      .bos = options.bos_token.empty() ? family.bos : std::string_view(options.bos_token),
      .eos = options.eos_token.empty() ? family.eos : std::string_view(options.eos_token),
      .date = options.date,
  };
  std::vector<ChatMessage> merged;  // messages with the system text merged, when asked
  RenderedChat result;
  if (options.system_mode == SystemPromptMode::kCustom) {
    if (family.system == chat::SystemSupport::kSupported) {
      input.system = options.system_prompt;
    } else {
      KVSAFE_CHECK(options.merge_system_into_first_user, "chat template ", family.name,
                   " does not support a system prompt (its official template raises on one); "
                   "use system prompt none, or merge_system_into_first_user to prepend it to the first user turn");
      merged.assign(messages.begin(), messages.end());
      merged.front().content = options.system_prompt + "\n\n" + merged.front().content;
      input.messages = merged;
    }
    result.system_prompt = options.system_prompt;
  } else if (options.system_mode == SystemPromptMode::kModelDefault) {
    result.system_prompt = std::string(family.default_system);
  }

  chat::RenderOutput out;
  family.render(input, out);
  result.text = std::move(out.text());
  result.last_user_end = out.last_user_end();
  result.template_writes_bos = family.writes_bos;
  return result;
}

TokenizedChat ChatTemplate::tokenize(const Tokenizer& tokenizer, std::span<const ChatMessage> messages,
                                     const ChatOptions& options) const {
  const chat::Family& family = chat::families()[family_];
  TokenizedChat result;
  result.rendered = render(messages, options);
  const std::string_view bos = options.bos_token.empty() ? family.bos : std::string_view(options.bos_token);
  if (family.writes_bos) check_special(tokenizer, family.name, "bos_token", bos);

  // NOTE: reference/chat_templates.md rule 1: a template that writes BOS must not get a
  // second one from the tokenizer (add_bos_token true for Llama-2, Mistral, Gemma-2).
  // Templates that do not write BOS leave it to the tokenizer's configuration (Phi-3:
  // the tokenizer adds <s>; Qwen2, SmolLM2, Yi: no BOS).
  // The paper's path (BosRule::kPaper) keeps the tokenizer's own rule and so doubles it.
  const bool suppress_tokenizer_bos = family.writes_bos && options.bos == BosRule::kOnce;
  const EncodeOptions encode{
      .add_bos = suppress_tokenizer_bos ? std::optional<bool>(false) : std::nullopt,
      .add_eos = false,
      .parse_special = true,
  };
  result.ids = tokenizer.encode(result.rendered.text, encode);
  result.tokenizer_added_bos = !suppress_tokenizer_bos && tokenizer.adds_bos() && tokenizer.bos_id().has_value();

  // Post-instruction tokens: tokenize the text up to the end of the last user content;
  // the first id where the two sequences differ is the first token holding text after
  // the user content (a token straddling the boundary counts as post-instruction).
  const std::vector<TokenId> prefix =
      tokenizer.encode(std::string_view(result.rendered.text).substr(0, result.rendered.last_user_end), encode);
  const std::size_t begin = common_prefix(prefix, result.ids);
  for (std::size_t i = begin; i < result.ids.size(); ++i) result.post_instruction.push_back(i);
  return result;
}

std::vector<std::string> chat_template_names() {
  std::vector<std::string> names;
  for (const chat::Family& family : chat::families()) names.emplace_back(family.name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace kvsafe::engine
