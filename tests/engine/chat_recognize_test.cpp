// Recognizing a template string, and finding a model's template on disk.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "common/error.h"
#include "common/sha256.h"
#include "tests/engine/chat_test_util.h"
#include "tests/testing/temp_dir.h"
#include "text/chat_family.h"
#include "text/chat_template.h"

namespace kvsafe::engine {
namespace {

namespace fs = std::filesystem;

// family -> the provenance of its golden file (template_sha256 etc.), for families that
// had an official template.
std::map<std::string, nlohmann::json> golden_provenance() {
  std::map<std::string, nlohmann::json> out;
  for (const auto& path : test::chat_golden_files()) {
    const auto doc = test::read_chat_json(path);
    if (doc.at("provenance").contains("template_sha256")) {
      out[doc.at("family").get<std::string>()] = doc.at("provenance");
    }
  }
  return out;
}

// The ```jinja blocks of the shared reference notes, keyed by the section they sit in.
std::vector<std::pair<std::string, std::string>> reference_blocks() {
  std::ifstream in(test::chat_reference_notes());
  std::vector<std::pair<std::string, std::string>> out;
  std::string line, section, body;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line.starts_with("## ")) section = line;
    if (!inside && line == "```jinja") {
      inside = true;
      body.clear();
    } else if (inside && line == "```") {
      inside = false;
      out.emplace_back(section, body.substr(0, body.size() - 1));  // no final newline
    } else if (inside) {
      body += line + "\n";
    }
  }
  return out;
}

TEST(ChatRecognize, ReferenceTemplatesAreRecognizedByHash) {
  if (!fs::exists(test::chat_reference_notes())) GTEST_SKIP() << "no " << test::chat_reference_notes();
  const auto provenance = golden_provenance();
  const std::vector<std::pair<std::string, std::string>> sections = {
      {"## 1. Llama-2", "llama-2"}, {"## 2. Llama-3", "llama-3"}, {"## 3. Mistral", "mistral-v0.2"},
      {"## 4. Qwen2", "qwen2"},     {"## 5. Phi-3", "phi-3"},     {"## 6. Gemma-2", "gemma-2"},
      {"## 7. SmolLM2", "smollm2"},
  };
  const auto blocks = reference_blocks();
  ASSERT_EQ(blocks.size(), sections.size());
  for (const auto& [section, text] : blocks) {
    std::string family;
    for (const auto& [prefix, name] : sections) {
      if (section.starts_with(prefix)) family = name;
    }
    SCOPED_TRACE(section);
    ASSERT_FALSE(family.empty());
    const ChatTemplate chat = ChatTemplate::recognize(text);
    EXPECT_EQ(chat.name(), family);
    EXPECT_EQ(chat.match(), ChatTemplateMatch::kHash);
    EXPECT_EQ(chat.template_sha256(), sha256_hex(text));
    // The golden file's provenance hash is this very string (SmolLM2's golden comes from
    // the GGUF's copy and records the reference copy separately).
    const auto& p = provenance.at(family);
    const std::string key = family == "smollm2" ? "reference_template_sha256" : "template_sha256";
    EXPECT_EQ(p.at(key).get<std::string>(), sha256_hex(text));
    // CRLF line ends and surrounding whitespace do not change the normalized hash.
    std::string crlf = "\n  " + text + "\r\n";
    EXPECT_EQ(ChatTemplate::recognize(crlf).match(), ChatTemplateMatch::kHash);
    // An edited template of the family is still recognized, by its markers.
    const ChatTemplate edited = ChatTemplate::recognize(text + "{# local edit #}");
    EXPECT_EQ(edited.name(), family);
    EXPECT_EQ(edited.match(), ChatTemplateMatch::kMarkers);
    // Mixtral's own template is the same string as the Mistral v0.2 block.
    if (family == "mistral-v0.2") {
      EXPECT_EQ(provenance.at("mixtral").at("template_sha256").get<std::string>(), sha256_hex(text));
    }
  }
}

// Every golden file rendered from an official template records that template's normalized
// hash; the recognition table must map it to the same family (Mixtral's original template
// is the very string of Mistral v0.2's, so it is recognized as that family, which renders
// it identically).
TEST(ChatRecognize, GoldenTemplateHashesAreKnown) {
  int checked = 0;
  for (const auto& [family, p] : golden_provenance()) {
    SCOPED_TRACE(family);
    const std::string hash = p.at("template_normalized_sha256").get<std::string>();
    const auto known = chat::known_template_family(hash);
    ASSERT_TRUE(known.has_value()) << hash << " (add it to text/chat_recognize.cpp)";
    EXPECT_EQ(*known, family == "mixtral" ? "mistral-v0.2" : family);
    ++checked;
  }
  EXPECT_GE(checked, 7);
  // Families whose golden file came from a template file (--templates) say where it came from.
  for (const auto& path : test::chat_golden_files()) {
    const auto doc = test::read_chat_json(path);
    if (!doc.at("provenance").contains("template_file")) continue;
    SCOPED_TRACE(path.filename().string());
    EXPECT_TRUE(doc.at("provenance").contains("template_sha256"));
    EXPECT_FALSE(doc.at("provenance").at("template_source").get<std::string>().empty());
    EXPECT_TRUE(doc.at("note").get<std::string>().starts_with("Rendered by jinja2 from the official template"));
  }
}

TEST(ChatRecognize, Markers) {
  struct Case {
    std::string text;
    std::string family;
  };
  const std::vector<Case> cases = {
      {"{{ '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>' }}",
       "qwen2.5"},
      {"{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face' }}", "smollm2"},
      {"{% if system_message is defined %}{{ system_message }}{% endif %}{{ '<|im_start|>user\\n' + content }}", "yi"},
      {"{{ '<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge Date: December 2023' }}", "llama-3.1"},
      {"{{ bos_token }}{{ '[INST] ' + m + '[/INST]' }}{{ ' ' + a|trim + eos_token }}", "mistral-v0.3"},
      {"{{ '[SYSTEM_PROMPT]' + s + '[/SYSTEM_PROMPT]' }}{{ '[INST]' + m + '[/INST]' }}", "mistral-small"},
      {"{{ bos_token }}{{ 'User: ' + c + '\\n\\n' }}{{ 'Assistant: ' + c + eos_token }}", "deepseek"},
      {"{{ bos_token }}{{ '<|user|>\\n' + c + '\\n' }}{{ '<|assistant|>\\n' + c + eos_token }}", "olmo-2"},
      {"{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\\n'}}{% endif %}"
       "{{'<|user|>\\n' + c + '<|end|>\\n'}}{{ '<|assistant|>\\n' }}",
       "phi-3.5"},
  };
  for (const Case& c : cases) {
    const ChatTemplate chat = ChatTemplate::recognize(c.text);
    EXPECT_EQ(chat.name(), c.family) << c.text;
    EXPECT_EQ(chat.match(), ChatTemplateMatch::kMarkers);
  }
}

// An unknown ChatML template is rendered as plain ChatML, and says so through match().
TEST(ChatRecognize, GenericChatmlIsAMarkerMatch) {
  const ChatTemplate chat = ChatTemplate::recognize(
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
      "'\\n'}}{% endfor %}");
  EXPECT_EQ(chat.name(), "chatml");
  EXPECT_EQ(chat.match(), ChatTemplateMatch::kMarkers);
  EXPECT_EQ(chat.default_system_prompt(), "");
}

TEST(ChatRecognize, UnknownTemplateIsAnError) {
  const std::string text = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}";
  EXPECT_FALSE(ChatTemplate::try_recognize(text).has_value());
  try {
    (void)ChatTemplate::recognize(text);
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("unrecognized chat template (sha256 " + sha256_hex(text)), std::string::npos) << message;
    EXPECT_NE(message.find("llama-2"), std::string::npos) << message;
  }
}

class ChatLoad : public ::testing::Test {
 protected:
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name, std::ios::binary) << text; }
  kvsafe::testing::TempDir scratch_{"chat_load"};
  const fs::path dir_ = scratch_.path();
};

constexpr const char* kChatml =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou "
    "are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";

TEST_F(ChatLoad, TokenizerConfigString) {
  write("tokenizer_config.json", nlohmann::json{{"chat_template", kChatml}, {"bos_token", nullptr}}.dump());
  EXPECT_EQ(read_chat_template(dir_), kChatml);
  EXPECT_EQ(read_chat_template(dir_ / "tokenizer_config.json"), kChatml);
  const ChatTemplate chat = load_chat_template(dir_);
  EXPECT_EQ(chat.name(), "qwen2");
  EXPECT_EQ(chat.template_sha256(), sha256_hex(kChatml));
  EXPECT_EQ(load_chat_template(dir_, {.name = "yi"}).name(), "yi");
}

TEST_F(ChatLoad, TokenizerConfigNamedList) {
  const nlohmann::json list =
      nlohmann::json::array({{{"name", "tool_use"}, {"template", "{{ '<start_of_turn>' }}<end_of_turn>"}},
                             {{"name", "default"}, {"template", kChatml}}});
  write("tokenizer_config.json", nlohmann::json{{"chat_template", list}}.dump());
  EXPECT_EQ(read_chat_template(dir_), kChatml);

  write("tokenizer_config.json",
        nlohmann::json{{"chat_template", nlohmann::json::array({{{"name", "rag"}, {"template", "x"}}})}}.dump());
  try {
    (void)read_chat_template(dir_);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("none named \"default\""), std::string::npos) << e.what();
  }
}

TEST_F(ChatLoad, JinjaFileWinsAndMissingTemplate) {
  write("tokenizer_config.json", nlohmann::json{{"eos_token", "</s>"}}.dump());
  EXPECT_FALSE(read_chat_template(dir_).has_value());
  try {
    (void)load_chat_template(dir_);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("has no chat template"), std::string::npos) << e.what();
  }
  write("chat_template.jinja", "{{ bos_token }}{{ '<start_of_turn>user\\n' }}<end_of_turn>");
  EXPECT_EQ(load_chat_template(dir_).name(), "gemma-2");
  // A grid's .jinja file replaces the model's own template.
  write("other.jinja", kChatml);
  EXPECT_EQ(load_chat_template(dir_, {.template_file = dir_ / "other.jinja"}).name(), "qwen2");
}

TEST_F(ChatLoad, BadFiles) {
  write("tokenizer_config.json", "{not json");
  EXPECT_THROW((void)read_chat_template(dir_), InputError);
  EXPECT_THROW((void)read_chat_template(dir_ / "missing.gguf"), InputError);
  fs::create_directories(dir_ / "empty");
  EXPECT_THROW((void)read_chat_template(dir_ / "empty"), InputError);
  write("unknown.jinja", "{{ messages }}");
  try {
    (void)load_chat_template(dir_, {.template_file = dir_ / "unknown.jinja"});
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown.jinja: unrecognized chat template"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvsafe::engine
