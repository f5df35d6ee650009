// Renderers of templates that mark each turn with a role tag: Phi-3 / Phi-3.5
// (<|user|> ... <|end|>), Gemma-2 (<start_of_turn>user), DeepSeek-LLM chat ("User: "),
// OLMo-2 (Tulu 3: <|user|> without an end tag).

#include "common/error.h"
#include "text/chat_family.h"

namespace kvsafe::engine::chat {
namespace {

// Phi-3's turn: "<|{role}|>\n{content}<|end|>\n", contents untouched.
void add_phi_turn(std::string_view tag, std::string_view content, bool is_user, RenderOutput& out) {
  out.add(tag);
  out.add("\n");
  if (is_user) {
    out.add_user_content(content);
  } else {
    out.add(content);
  }
  out.add("<|end|>\n");
}

void render_phi(const RenderInput& input, bool skip_empty_system, RenderOutput& out) {
  if (input.system && !(skip_empty_system && input.system->empty())) {
    add_phi_turn("<|system|>", *input.system, false, out);
  }
  for (const ChatMessage& message : input.messages) {
    const bool is_user = message.role == ChatRole::kUser;
    add_phi_turn(is_user ? "<|user|>" : "<|assistant|>", message.content, is_user, out);
  }
  // NOTE: without a generation prompt the template ends the text with eos_token.
  if (input.add_generation_prompt) {
    out.add("<|assistant|>\n");
  } else {
    out.add(input.eos);
  }
}

}  // namespace

// Phi-3-mini-instruct, July-2024 template: no BOS in the template (the tokenizer adds
// <s>, add_bos_token true), a system turn when given.
void render_phi3(const RenderInput& input, RenderOutput& out) {
  render_phi(input, false, out);
}

// Phi-3.5-mini-instruct: Phi-3's template, except that an empty system message is skipped.
void render_phi35(const RenderInput& input, RenderOutput& out) {
  render_phi(input, true, out);
}

// Gemma-2-it: BOS, then "<start_of_turn>{user|model}\n{content|trim}<end_of_turn>\n" per
// turn, generation prompt "<start_of_turn>model\n". The template raises on a system
// message (ChatTemplate merges one into the first user turn only when asked).
void render_gemma2(const RenderInput& input, RenderOutput& out) {
  KVSAFE_ASSERT(!input.system, "the Gemma-2 template has no system role");
  out.add(input.bos);
  for (const ChatMessage& message : input.messages) {
    const bool is_user = message.role == ChatRole::kUser;
    out.add(is_user ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
    if (is_user) {
      out.add_user_content(python_strip(message.content));
    } else {
      out.add(python_strip(message.content));
    }
    out.add("<end_of_turn>\n");
  }
  if (input.add_generation_prompt) out.add("<start_of_turn>model\n");
}

// deepseek-llm-7b/67b-chat: BOS, system "{system}\n\n", user "User: {user}\n\n",
// assistant "Assistant: {assistant}<｜end▁of▁sentence｜>", generation prompt "Assistant:"
// with no trailing space (the model generates the space).
void render_deepseek(const RenderInput& input, RenderOutput& out) {
  out.add(input.bos);
  if (input.system) {
    out.add(*input.system);
    out.add("\n\n");
  }
  for (const ChatMessage& message : input.messages) {
    if (message.role == ChatRole::kUser) {
      out.add("User: ");
      out.add_user_content(message.content);
      out.add("\n\n");
    } else {
      out.add("Assistant: ");
      out.add(message.content);
      out.add(input.eos);
    }
  }
  if (input.add_generation_prompt) out.add("Assistant:");
}

// OLMo-2-Instruct (the Tulu 3 template with bos_token in front): "<|system|>\n{system}\n",
// "<|user|>\n{user}\n", assistant "<|assistant|>\n{assistant}<|endoftext|>" followed by
// "\n" unless it is the last message; the generation prompt "<|assistant|>\n" is written
// after the last message.
void render_olmo2(const RenderInput& input, RenderOutput& out) {
  out.add(input.bos);
  if (input.system) {
    out.add("<|system|>\n");
    out.add(*input.system);
    out.add("\n");
  }
  for (std::size_t i = 0; i < input.messages.size(); ++i) {
    const ChatMessage& message = input.messages[i];
    const bool last = i + 1 == input.messages.size();
    if (message.role == ChatRole::kUser) {
      out.add("<|user|>\n");
      out.add_user_content(message.content);
      out.add("\n");
    } else {
      out.add("<|assistant|>\n");
      out.add(message.content);
      out.add(input.eos);
      if (!last) out.add("\n");
    }
  }
  if (input.add_generation_prompt) out.add("<|assistant|>\n");
}

}  // namespace kvsafe::engine::chat
