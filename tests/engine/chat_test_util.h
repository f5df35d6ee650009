#pragma once
// Helpers shared by the chat template tests: golden files (tests/oracles/
// chat_template_oracle.py) and their cases as kvsafe types.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "text/chat_template.h"

namespace kvsafe::engine::test {

inline std::filesystem::path chat_source_dir() {
  return KVSAFE_SOURCE_DIR;
}
inline std::filesystem::path chat_fixture(const std::string& name) {
  return chat_source_dir() / "tests" / "engine" / "fixtures" / name;
}
// The shared reference notes the oracle read the official templates from.
inline std::filesystem::path chat_reference_notes() {
  return chat_source_dir() / ".." / "shared" / "reference" / "chat_templates.md";
}

inline nlohmann::json read_chat_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("cannot open " + path.string());
  return nlohmann::json::parse(in);
}

// Every golden file: tests/engine/fixtures/chat_<family>.json.
inline std::vector<std::filesystem::path> chat_golden_files() {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(chat_source_dir() / "tests" / "engine" / "fixtures")) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("chat_") && name.ends_with(".json")) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::vector<ChatMessage> chat_messages(const nlohmann::json& c) {
  std::vector<ChatMessage> out;
  for (const auto& m : c.at("messages")) {
    const std::string role = m.at("role").get<std::string>();
    out.push_back({.role = role == "user" ? ChatRole::kUser : ChatRole::kAssistant,
                   .content = m.at("content").get<std::string>()});
  }
  return out;
}

inline ChatOptions chat_options(const nlohmann::json& c) {
  const std::string mode = c.at("system_mode").get<std::string>();
  ChatOptions options;
  options.system_mode = mode == "custom" ? SystemPromptMode::kCustom
                        : mode == "none" ? SystemPromptMode::kNone
                                         : SystemPromptMode::kModelDefault;
  options.system_prompt = c.at("system_prompt").get<std::string>();
  options.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
  options.merge_system_into_first_user = c.value("merge_system_into_first_user", false);
  return options;
}

// Shows strings with control characters escaped, so failures are readable.
inline std::string chat_printable(const std::string& text) {
  return nlohmann::json(text).dump();
}

}  // namespace kvsafe::engine::test
