#pragma once
// ChatTemplate: a model's own chat template, rendered exactly as Hugging Face
// transformers renders the official Jinja template (whitespace, BOS, default system
// prompt), by a hand-written renderer per family -- there is no Jinja interpreter.
//
//   ChatTemplate chat = load_chat_template("SmolLM2-135M-Instruct.Q4_1.gguf");  // recognized
//   ChatTemplate chat = ChatTemplate::by_name("llama-2");                       // the grid's name
//   std::vector<ChatMessage> turns{{.role = ChatRole::kUser, .content = "Hi"}};
//   TokenizedChat prompt = chat.tokenize(tokenizer, turns, {.system_mode = SystemPromptMode::kNone});
//   // prompt.ids, prompt.post_instruction (positions the diagnostics read activations at)
//
// Why not general Jinja: the paper's models use a dozen short templates; a renderer per
// family is easy to check against the official template (tests/oracles/
// chat_template_oracle.py renders the official text with jinja2 and the golden files
// pin both), and it cannot execute arbitrary template code from a downloaded file.
//
// The system prompt is an explicit setting (SystemPromptMode): what the template does
// without one (kModelDefault), no system turn at all (kNone), or a given text (kCustom).
// Record RenderedChat::system_prompt and ChatTemplate::template_sha256() with each run.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.h"

namespace kvsafe::engine {

// Roles of the conversation proper. The system prompt is not a message: it is set in
// ChatOptions, so that it is always a deliberate, recorded choice.
enum class ChatRole { kUser, kAssistant };

struct ChatMessage {
  ChatRole role = ChatRole::kUser;  // turns alternate user, assistant, user, ... starting with user
  std::string content{};            // UTF-8 text, passed to the template as is
};

enum class SystemPromptMode {
  // Exactly what the template renders when the conversation has no system message: Qwen2,
  // Qwen2.5 and SmolLM2 insert their default system prompt, Llama-3.1 its date header,
  // the others nothing.
  kModelDefault,
  // No system turn at all, even where the template would insert a default one (a
  // deliberate departure from the template; the same as kModelDefault for templates
  // that insert nothing).
  kNone,
  // ChatOptions::system_prompt as a leading system message.
  kCustom,
};

// How a template that writes BOS itself meets a tokenizer that adds one (issue 20 item 1).
enum class BosRule {
  kOnce,   // the tokenizer's automatic BOS is off: one BOS (kvsafe; llama.cpp's chat path)
  kPaper,  // HF's two-step path (render to text, then tokenizer(text) with its defaults): a
           // tokenizer that adds BOS doubles the template's (Llama-3.1, Mistral, Gemma-2, DeepSeek)
};

struct ChatOptions {
  SystemPromptMode system_mode = SystemPromptMode::kModelDefault;  // see SystemPromptMode
  std::string system_prompt{};                                     // the text for kCustom; must be empty otherwise
  bool add_generation_prompt = true;  // end with the assistant header the model continues from
  // Templates without a system role (Gemma-2, Mistral v0.2, Mixtral) raise on one; with
  // this set, kCustom text is prepended to the first user turn as "{system}\n\n{user}"
  // instead (the usual workaround, also llama.cpp's).
  bool merge_system_into_first_user = false;
  // Date printed by templates that print one. llama-3.1: "26 Jul 2024" style, empty =
  // the template's own default ("26 Jul 2024"). Others ignore it.
  std::string date{};
  std::string bos_token{};       // spelling of bos_token in the template; empty = the family's
  std::string eos_token{};       // spelling of eos_token in the template; empty = the family's
  BosRule bos = BosRule::kOnce;  // tokenize(): see BosRule
};

// One rendered prompt.
struct RenderedChat {
  std::string text{};                // the prompt exactly as the template renders it
  std::size_t last_user_end = 0;     // byte offset in `text` just past the last user message's content
  std::string system_prompt{};       // the system text that was rendered ("" = none): record it
  bool template_writes_bos = false;  // the template wrote BOS itself: tokenize without adding one
};

// A rendered prompt as token ids.
struct TokenizedChat {
  RenderedChat rendered{};
  std::vector<TokenId> ids{};
  bool tokenizer_added_bos = false;  // BOS came from the tokenizer (on top of the template's under BosRule::kPaper)
  // Positions in `ids` of the post-instruction tokens: from the first token that holds
  // text after the last user message's content to the end of the prompt (the generation
  // prompt when add_generation_prompt). Arditi et al. read the refusal direction here.
  std::vector<std::size_t> post_instruction{};
};

// How a ChatTemplate was chosen.
enum class ChatTemplateMatch {
  kName,     // by built-in name (the grid's chat_template:)
  kHash,     // the template string's normalized sha256 is a known official template
  kMarkers,  // not a known string, but it has the family's distinctive markers
};

class ChatTemplate {
 public:
  // A built-in template by name (chat_template_names()). Throws InputError listing the
  // known names for any other.
  static ChatTemplate by_name(std::string_view name);

  // Recognizes a template string from tokenizer_config.json or GGUF
  // tokenizer.chat_template: first by its normalized sha256 (CRLF -> LF, outer whitespace
  // trimmed) against the official templates, then by markers (e.g. <|im_start|> plus the
  // default system text tells SmolLM2 from Qwen2). A ChatML template without a known
  // default system prompt becomes "chatml" (match kMarkers, logged as a warning). Throws
  // InputError with the hash and the known names when nothing matches.
  static ChatTemplate recognize(std::string_view template_text);
  // Same, but nullopt instead of throwing when nothing matches.
  static std::optional<ChatTemplate> try_recognize(std::string_view template_text);

  const std::string& name() const { return name_; }  // e.g. "llama-2"
  ChatTemplateMatch match() const { return match_; }
  // sha256 (hex) of the template string as given to recognize(); empty when by name.
  const std::string& template_sha256() const { return template_sha256_; }
  // The system prompt the template inserts by itself ("" when none).
  std::string_view default_system_prompt() const;
  // False when the official template rejects a system message (Gemma-2, Mistral v0.2, Mixtral).
  bool supports_system_prompt() const;
  // True when the template writes the BOS token's text itself.
  bool writes_bos() const;

  // Renders `messages`. Throws InputError when they are empty or do not alternate
  // user/assistant starting with user, when kCustom is used on a template without a
  // system role (unless merge_system_into_first_user), or when system_prompt is set
  // without kCustom.
  RenderedChat render(std::span<const ChatMessage> messages, const ChatOptions& options = {}) const;

  // Renders, then tokenizes with special-token parsing on and the tokenizer's automatic
  // BOS off when the template writes BOS itself (otherwise as the tokenizer is
  // configured), so BOS is never doubled; with options.bos == kPaper the tokenizer adds its
  // BOS as configured whatever the template wrote, as HF's two-step path does. Throws
  // InputError as render() does, and when
  // the template writes a BOS/EOS spelling that is not a special token of `tokenizer`.
  TokenizedChat tokenize(const Tokenizer& tokenizer, std::span<const ChatMessage> messages,
                         const ChatOptions& options = {}) const;

 private:
  ChatTemplate(std::size_t family, ChatTemplateMatch match, std::string sha256);
  std::size_t family_ = 0;  // index into the family table (chat_family.h)
  std::string name_;
  ChatTemplateMatch match_ = ChatTemplateMatch::kName;
  std::string template_sha256_;
};

// The built-in template names, sorted: what the grid's chat_template: key accepts.
std::vector<std::string> chat_template_names();

// The hash recognize() matches on: sha256 hex of the template with CRLF -> LF and outer
// whitespace trimmed.
std::string chat_template_normalized_sha256(std::string_view template_text);

// The chat template string a model ships, or nullopt when it has none:
//  * a GGUF file: metadata tokenizer.chat_template;
//  * an HF folder: chat_template.jinja if present, else tokenizer_config.json's
//    chat_template (a string, or a list of {name, template} of which "default" is used);
//  * a tokenizer_config.json or a .jinja file itself.
// Throws InputError / ModelFileError naming the file when it cannot be read or parsed.
std::optional<std::string> read_chat_template(const std::filesystem::path& path);

struct ChatTemplateLoadOptions {
  std::string name{};                     // a built-in name; wins over everything else
  std::filesystem::path template_file{};  // a .jinja file to recognize instead of the model's own
};

// The template for the model at `model_path` (see read_chat_template), chosen by
// options.name, else recognized from options.template_file, else from the model's own
// template. Throws InputError naming the path when the model has none or it is not
// recognized (the message lists the names to set explicitly).
ChatTemplate load_chat_template(const std::filesystem::path& model_path, const ChatTemplateLoadOptions& options = {});

}  // namespace kvsafe::engine
