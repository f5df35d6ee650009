// Chat template rendering against the golden files of tests/oracles/chat_template_oracle.py
// (the official Jinja templates rendered by jinja2 where the text is available, pinned
// formatters where it is not: each case says which), plus the checks of the setting.

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>

#include "common/error.h"
#include "tests/engine/chat_test_util.h"
#include "text/chat_family.h"
#include "text/chat_template.h"

namespace kvsafe::engine {
namespace {

using test::chat_messages;
using test::chat_options;
using test::chat_printable;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(ChatTemplate, GoldenFilesCoverEveryFamily) {
  std::set<std::string> golden;
  for (const auto& path : test::chat_golden_files()) {
    golden.insert(test::read_chat_json(path).at("family").get<std::string>());
  }
  const auto names = chat_template_names();
  EXPECT_EQ(golden, std::set<std::string>(names.begin(), names.end()));
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* family :
       {"llama-2", "llama-3", "llama-3.1", "mistral-v0.2", "mistral-v0.3", "mistral-small", "mixtral", "qwen2",
        "qwen2.5", "smollm2", "phi-3", "phi-3.5", "gemma-2", "yi", "deepseek", "olmo-2"}) {
    EXPECT_TRUE(golden.count(family)) << family;
  }
}

TEST(ChatTemplate, RendersGoldenText) {
  int checked = 0;
  for (const auto& path : test::chat_golden_files()) {
    const auto doc = test::read_chat_json(path);
    const ChatTemplate chat = ChatTemplate::by_name(doc.at("family").get<std::string>());
    EXPECT_EQ(chat.match(), ChatTemplateMatch::kName);
    EXPECT_TRUE(chat.template_sha256().empty());
    for (const auto& c : doc.at("cases")) {
      SCOPED_TRACE(path.filename().string() + " case " + c.at("name").get<std::string>() + " (" +
                   c.at("oracle").get<std::string>() + ")");
      const auto messages = chat_messages(c);
      const ChatOptions options = chat_options(c);
      if (c.contains("expect_error")) {
        EXPECT_NE(error_of([&] { (void)chat.render(messages, options); }).find(c.at("expect_error").get<std::string>()),
                  std::string::npos);
        continue;
      }
      const RenderedChat rendered = chat.render(messages, options);
      EXPECT_EQ(chat_printable(rendered.text), chat_printable(c.at("text").get<std::string>()));
      EXPECT_EQ(rendered.last_user_end, c.at("last_user_end").get<std::size_t>());
      EXPECT_EQ(rendered.template_writes_bos, chat.writes_bos());
      if (options.system_mode == SystemPromptMode::kCustom) {
        EXPECT_EQ(rendered.system_prompt, options.system_prompt);
      } else if (options.system_mode == SystemPromptMode::kNone) {
        EXPECT_EQ(rendered.system_prompt, "");
      } else {
        EXPECT_EQ(rendered.system_prompt, chat.default_system_prompt());
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 100);
}

TEST(ChatTemplate, DefaultSystemPrompts) {
  EXPECT_EQ(ChatTemplate::by_name("smollm2").default_system_prompt(),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(ChatTemplate::by_name("qwen2").default_system_prompt(), "You are a helpful assistant.");
  EXPECT_EQ(ChatTemplate::by_name("llama-2").default_system_prompt(), "");
  EXPECT_FALSE(ChatTemplate::by_name("gemma-2").supports_system_prompt());
  EXPECT_TRUE(ChatTemplate::by_name("phi-3").supports_system_prompt());
}

TEST(ChatTemplate, UnknownNameListsKnownOnes) {
  const std::string message = error_of([] { (void)ChatTemplate::by_name("mistral"); });
  EXPECT_NE(message.find("unknown chat template \"mistral\""), std::string::npos) << message;
  for (const std::string& name : chat_template_names()) EXPECT_NE(message.find(name), std::string::npos) << name;
}

TEST(ChatTemplate, RolesMustAlternateFromUser) {
  const ChatTemplate chat = ChatTemplate::by_name("qwen2");
  using R = ChatRole;
  const std::vector<ChatMessage> assistant_first{{.role = R::kAssistant, .content = "hi"}};
  const std::vector<ChatMessage> two_users{{.role = R::kUser, .content = "a"}, {.role = R::kUser, .content = "b"}};
  const std::vector<ChatMessage> two_assistants{{.role = R::kUser, .content = "a"},
                                                {.role = R::kAssistant, .content = "b"},
                                                {.role = R::kAssistant, .content = "c"}};
  EXPECT_NE(error_of([&] { (void)chat.render(assistant_first); }).find("message 0 has role assistant but user"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)chat.render(two_users); }).find("message 1 has role user but assistant"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)chat.render(two_assistants); }).find("must alternate"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)chat.render(std::vector<ChatMessage>{}); }).find("no messages"), std::string::npos);
}

TEST(ChatTemplate, SystemPromptSettingIsChecked) {
  const std::vector<ChatMessage> one{{.role = ChatRole::kUser, .content = "Hi"}};
  // Text without mode custom would be silently ignored: refused instead.
  EXPECT_NE(
      error_of([&] { (void)ChatTemplate::by_name("qwen2").render(one, {.system_prompt = "x"}); }).find("not custom"),
      std::string::npos);
  // Templates that raise on a system message: an error unless merging is asked for.
  for (const char* name : {"gemma-2", "mistral-v0.2", "mixtral"}) {
    const std::string message = error_of([&] {
      (void)ChatTemplate::by_name(name).render(one, {.system_mode = SystemPromptMode::kCustom, .system_prompt = "S"});
    });
    EXPECT_NE(message.find("does not support a system prompt"), std::string::npos) << name << ": " << message;
  }
  const RenderedChat merged = ChatTemplate::by_name("gemma-2").render(
      one, {.system_mode = SystemPromptMode::kCustom, .system_prompt = "S", .merge_system_into_first_user = true});
  EXPECT_EQ(merged.text, "<bos><start_of_turn>user\nS\n\nHi<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(merged.system_prompt, "S");
}

TEST(ChatTemplate, Llama31DateAndSpecialTokenOverrides) {
  const std::vector<ChatMessage> one{{.role = ChatRole::kUser, .content = "Hi"}};
  const RenderedChat dated = ChatTemplate::by_name("llama-3.1").render(one, {.date = "01 Jan 2025"});
  EXPECT_NE(dated.text.find("Today Date: 01 Jan 2025\n\n<|eot_id|>"), std::string::npos) << dated.text;
  const RenderedChat bos = ChatTemplate::by_name("llama-2").render(one, {.bos_token = "<BOS>"});
  EXPECT_EQ(bos.text, "<BOS>[INST] Hi [/INST]");
}

// Jinja's trim / Python's str.strip(): Unicode spaces go, other characters and invalid
// bytes stay.
TEST(ChatTemplate, PythonStrip) {
  EXPECT_EQ(chat::python_strip(" \t\n a b \r\v\f"), "a b");
  EXPECT_EQ(chat::python_strip("\xE3\x80\x80x\xC2\xA0"), "x");                              // U+3000, U+00A0
  EXPECT_EQ(chat::python_strip("\xE2\x80\x8Bx\xE2\x80\x8B"), "\xE2\x80\x8Bx\xE2\x80\x8B");  // U+200B is not a space
  EXPECT_EQ(chat::python_strip("\x1Fx\x1C"), "x");  // Python counts these as spaces
  EXPECT_EQ(chat::python_strip("x \xFF"), "x \xFF");
  EXPECT_EQ(chat::python_strip("   "), "");
}

}  // namespace
}  // namespace kvsafe::engine
