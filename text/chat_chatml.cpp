// ChatML renderers: Qwen2, Qwen2.5, SmolLM2 and plain ChatML share one structure and
// differ only in the default system prompt; Yi's template is ChatML-like with its own
// quirks.

#include "text/chat_family.h"

namespace kvsafe::engine::chat {
namespace {

void add_turn(std::string_view role, std::string_view content, bool is_user, RenderOutput& out) {
  out.add("<|im_start|>");
  out.add(role);
  out.add("\n");
  if (is_user) {
    out.add_user_content(content);
  } else {
    out.add(content);
  }
  out.add("<|im_end|>\n");
}

// "<|im_start|>{role}\n{content}<|im_end|>\n" per message, contents untouched; without a
// system message the template inserts `default_system` (if any) as the first turn; the
// generation prompt is "<|im_start|>assistant\n".
void render_chatml_with_default(const RenderInput& input, std::string_view default_system, RenderOutput& out) {
  if (input.system) {
    add_turn("system", *input.system, false, out);
  } else if (!default_system.empty() && !input.omit_default_system) {
    add_turn("system", default_system, false, out);
  }
  for (const ChatMessage& message : input.messages) {
    const bool is_user = message.role == ChatRole::kUser;
    add_turn(is_user ? "user" : "assistant", message.content, is_user, out);
  }
  if (input.add_generation_prompt) out.add("<|im_start|>assistant\n");
}

}  // namespace

// Qwen2-Instruct: the default is inserted inside the message loop on loop.first when
// messages[0] is not a system message -- for a non-empty conversation the same text.
void render_qwen2(const RenderInput& input, RenderOutput& out) {
  render_chatml_with_default(input, "You are a helpful assistant.", out);
}

// Qwen2.5-Instruct without tools: the system block (given or default) comes before the
// loop; for plain chat the output is Qwen2's structure with Qwen2.5's default.
void render_qwen25(const RenderInput& input, RenderOutput& out) {
  render_chatml_with_default(input, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", out);
}

// SmolLM2-Instruct: Qwen2's template with SmolLM2's default (no final period).
void render_smollm2(const RenderInput& input, RenderOutput& out) {
  render_chatml_with_default(input, "You are a helpful AI assistant named SmolLM, trained by Hugging Face", out);
}

// Plain ChatML (e.g. OpenHermes): no default system prompt.
void render_chatml(const RenderInput& input, RenderOutput& out) {
  render_chatml_with_default(input, "", out);
}

// Yi-Chat / Yi-1.5-Chat: a system message is written raw, with no ChatML wrapper and no
// newline; each user turn is "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
// -- the assistant header is part of the user turn, so it appears whatever
// add_generation_prompt says -- and each assistant turn "{assistant}<|im_end|>\n".
// No default system prompt, no BOS (add_bos_token false).
void render_yi(const RenderInput& input, RenderOutput& out) {
  if (input.system) out.add(*input.system);
  for (const ChatMessage& message : input.messages) {
    if (message.role == ChatRole::kUser) {
      out.add("<|im_start|>user\n");
      out.add_user_content(message.content);
      out.add("<|im_end|>\n<|im_start|>assistant\n");
    } else {
      out.add(message.content);
      out.add("<|im_end|>\n");
    }
  }
}

}  // namespace kvsafe::engine::chat
