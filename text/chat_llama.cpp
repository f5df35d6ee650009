// Chat renderers of Meta's Llama families: Llama-2-chat, Llama-3-Instruct, Llama-3.1-Instruct.

#include <string>

#include "text/chat_family.h"

namespace kvsafe::engine::chat {
namespace {

std::string_view role_name(ChatRole role) {
  return role == ChatRole::kUser ? "user" : "assistant";
}

// One Llama-3 style message: header, trimmed content, <|eot_id|>.
void add_llama3_message(std::string_view role, std::string_view content, bool is_user, RenderOutput& out) {
  out.add("<|start_header_id|>");
  out.add(role);
  out.add("<|end_header_id|>\n\n");
  if (is_user) {
    out.add_user_content(python_strip(content));
  } else {
    out.add(python_strip(content));
  }
  out.add("<|eot_id|>");
}

}  // namespace

// Llama-2-chat (HF tokenizer_config, use_default_system_prompt false). Every user turn
// writes its own BOS: "<s>[INST] {content.strip()} [/INST]"; the system message becomes
// "<<SYS>>\n{system}\n<</SYS>>\n\n" in front of the first user content, and strip()
// applies to that combined string. Assistant turns: " {content.strip()} </s>". The
// template has no generation prompt: it ends right after "[/INST]" either way.
void render_llama2(const RenderInput& input, RenderOutput& out) {
  for (std::size_t i = 0; i < input.messages.size(); ++i) {
    const ChatMessage& message = input.messages[i];
    std::string content;
    if (i == 0 && input.system) {
      content = "<<SYS>>\n" + *input.system + "\n<</SYS>>\n\n" + message.content;
    } else {
      content = message.content;
    }
    if (message.role == ChatRole::kUser) {
      out.add(input.bos);
      out.add("[INST] ");
      out.add_user_content(python_strip(content));
      out.add(" [/INST]");
    } else {
      out.add(" ");
      out.add(python_strip(content));
      out.add(" ");
      out.add(input.eos);
    }
  }
}

// Llama-3-Instruct: BOS before the first message; each message
// "<|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>"; the system
// message is simply the first one. No default system prompt.
void render_llama3(const RenderInput& input, RenderOutput& out) {
  out.add(input.bos);
  if (input.system) add_llama3_message("system", *input.system, false, out);
  for (const ChatMessage& message : input.messages) {
    add_llama3_message(role_name(message.role), message.content, message.role == ChatRole::kUser, out);
  }
  if (input.add_generation_prompt) out.add("<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// Llama-3.1-Instruct (no tools): BOS, then always a system header
// "Cutting Knowledge Date: December 2023\nToday Date: {date_string}\n\n{system|trim}"
// (date_string defaults to "26 Jul 2024" in the template; an empty system text when
// none is given), then the messages as in Llama-3. kNone leaves the header out.
void render_llama31(const RenderInput& input, RenderOutput& out) {
  out.add(input.bos);
  if (!input.omit_default_system) {
    out.add("<|start_header_id|>system<|end_header_id|>\n\n");
    out.add("Cutting Knowledge Date: December 2023\n");
    out.add("Today Date: ");
    out.add(input.date.empty() ? std::string_view("26 Jul 2024") : input.date);
    out.add("\n\n");
    if (input.system) out.add(python_strip(*input.system));
    out.add("<|eot_id|>");
  }
  for (const ChatMessage& message : input.messages) {
    add_llama3_message(role_name(message.role), message.content, message.role == ChatRole::kUser, out);
  }
  if (input.add_generation_prompt) out.add("<|start_header_id|>assistant<|end_header_id|>\n\n");
}

}  // namespace kvsafe::engine::chat
