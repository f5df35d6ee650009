#pragma once
// Internal to the chat template code: the table of template families and the interface
// of their renderers (chat_llama.cpp, chat_mistral.cpp, chat_chatml.cpp,
// chat_role_tags.cpp). Each renderer reproduces one official Jinja template for plain
// chat (no tools), character for character, including its quirks; the comments in each
// renderer say which template and which quirk.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "text/chat_template.h"

namespace kvsafe::engine::chat {

// What a renderer gets: the conversation (validated: non-empty, alternating user/assistant
// from user) and the system message the Jinja template would see.
struct RenderInput {
  std::span<const ChatMessage> messages{};
  // The content of a leading {"role": "system"} message; nullopt: the template gets none.
  std::optional<std::string> system{};
  // kNone on a template that inserts something without a system message: leave it out.
  bool omit_default_system = false;
  bool add_generation_prompt = true;
  std::string_view bos{};   // the template's bos_token
  std::string_view eos{};   // the template's eos_token
  std::string_view date{};  // ChatOptions::date
};

// The renderer's output: text, and where the last user message's content ends.
class RenderOutput {
 public:
  void add(std::string_view piece) { text_ += piece; }
  // Appends a user message's content (as the template transformed it) and marks its end.
  void add_user_content(std::string_view content) {
    text_ += content;
    last_user_end_ = text_.size();
  }
  std::string& text() { return text_; }
  std::size_t last_user_end() const { return last_user_end_; }

 private:
  std::string text_;
  std::size_t last_user_end_ = 0;
};

using RenderFn = void (*)(const RenderInput& input, RenderOutput& out);

enum class SystemSupport {
  kSupported,    // a leading system message is rendered
  kUnsupported,  // the official template raises on one
};

struct Family {
  std::string_view name{};    // the built-in name (grid chat_template:)
  std::string_view models{};  // which released models use it (for messages and docs)
  RenderFn render = nullptr;
  std::string_view bos{};             // bos_token as the model's tokenizer_config spells it
  std::string_view eos{};             // eos_token as the model's tokenizer_config spells it
  std::string_view default_system{};  // system text the template inserts without one ("" none)
  // True when the template prints something (a default system turn or header) without
  // a system message, which SystemPromptMode::kNone leaves out.
  bool inserts_without_system = false;
  SystemSupport system = SystemSupport::kSupported;
  bool writes_bos = false;  // the template writes bos_token
};

// All families, in a fixed order (indices are stable within one build only).
std::span<const Family> families();
// Index of the family named `name`, or nullopt.
std::optional<std::size_t> find_family(std::string_view name);

// The family whose official template has this normalized sha256 (chat_recognize.cpp's
// table; chat_template_normalized_sha256), or nullopt when it is not a known template.
std::optional<std::string_view> known_template_family(std::string_view normalized_sha256);

// Python's str.strip() with no argument (Jinja's `trim` filter and `.strip()`): removes
// leading and trailing characters for which Python's str.isspace() is true, Unicode
// spaces included. Input is UTF-8; invalid bytes are never stripped.
std::string_view python_strip(std::string_view text);

// The family renderers.
void render_llama2(const RenderInput& input, RenderOutput& out);
void render_llama3(const RenderInput& input, RenderOutput& out);
void render_llama31(const RenderInput& input, RenderOutput& out);
void render_mistral_v1(const RenderInput& input, RenderOutput& out);
void render_mistral_v3(const RenderInput& input, RenderOutput& out);
void render_mistral_v7(const RenderInput& input, RenderOutput& out);
void render_qwen2(const RenderInput& input, RenderOutput& out);
void render_qwen25(const RenderInput& input, RenderOutput& out);
void render_smollm2(const RenderInput& input, RenderOutput& out);
void render_chatml(const RenderInput& input, RenderOutput& out);
void render_yi(const RenderInput& input, RenderOutput& out);
void render_phi3(const RenderInput& input, RenderOutput& out);
void render_phi35(const RenderInput& input, RenderOutput& out);
void render_gemma2(const RenderInput& input, RenderOutput& out);
void render_deepseek(const RenderInput& input, RenderOutput& out);
void render_olmo2(const RenderInput& input, RenderOutput& out);

}  // namespace kvsafe::engine::chat
