// Chat renderers of Mistral AI's instruct models, one per tokenizer generation (Mistral's
// own naming): V1 (Mistral-7B-Instruct-v0.2, Mixtral-8x7B-Instruct), V3
// (Mistral-7B-Instruct-v0.3) and V7 (Mistral-Small 3 / 3.1).

#include "common/error.h"
#include "text/chat_family.h"

namespace kvsafe::engine::chat {

// V1, the original HF template: BOS once, "[INST] {user} [/INST]" and "{assistant}</s>"
// with no space between "[/INST]" and the answer, contents untouched. The template
// raises on a system message (ChatTemplate merges one into the first user turn only
// when asked) and has no generation prompt.
void render_mistral_v1(const RenderInput& input, RenderOutput& out) {
  KVSAFE_ASSERT(!input.system, "the V1 Mistral template has no system role");
  out.add(input.bos);
  for (const ChatMessage& message : input.messages) {
    if (message.role == ChatRole::kUser) {
      out.add("[INST] ");
      out.add_user_content(message.content);
      out.add(" [/INST]");
    } else {
      out.add(message.content);
      out.add(input.eos);
    }
  }
}

// V3, the current HF template of v0.3 without tools: BOS, "[INST] {user}[/INST]" (no
// space before [/INST], intentional per Mistral), assistant " {assistant|trim}</s>".
// The system message is prepended as "{system}\n\n" to the user message only when that
// message is the last one of the conversation; otherwise the template drops it.
void render_mistral_v3(const RenderInput& input, RenderOutput& out) {
  out.add(input.bos);
  for (std::size_t i = 0; i < input.messages.size(); ++i) {
    const ChatMessage& message = input.messages[i];
    if (message.role == ChatRole::kUser) {
      out.add("[INST] ");
      if (i + 1 == input.messages.size() && input.system) {
        out.add(*input.system);
        out.add("\n\n");
      }
      out.add_user_content(message.content);
      out.add("[/INST]");
    } else {
      out.add(" ");
      out.add(python_strip(message.content));
      out.add(input.eos);
    }
  }
}

// V7 (Mistral-Small-24B-Instruct-2501 and 3.1-2503): BOS, then always
// "[SYSTEM_PROMPT]{system}[/SYSTEM_PROMPT]", then "[INST]{user}[/INST]" and
// "{assistant}</s>" with no spaces. No generation prompt.
// NOTE: without a system message the template inserts a default system prompt that
// embeds the current date (strftime_now), so a run could not be reproduced from its
// recorded settings. kvsafe therefore refuses kModelDefault here: pass the text as
// kCustom, or kNone to leave the block out.
void render_mistral_v7(const RenderInput& input, RenderOutput& out) {
  out.add(input.bos);
  if (!input.omit_default_system) {
    KVSAFE_CHECK(input.system.has_value(),
                 "chat template mistral-small: the model's default system prompt contains today's date, so it "
                 "cannot be rendered reproducibly; set the system prompt explicitly (custom text, or none)");
    out.add("[SYSTEM_PROMPT]");
    out.add(*input.system);
    out.add("[/SYSTEM_PROMPT]");
  }
  for (const ChatMessage& message : input.messages) {
    if (message.role == ChatRole::kUser) {
      out.add("[INST]");
      out.add_user_content(message.content);
      out.add("[/INST]");
    } else {
      out.add(message.content);
      out.add(input.eos);
    }
  }
}

}  // namespace kvsafe::engine::chat
