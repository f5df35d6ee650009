// Loader for a user's multi-turn benchmark: a JSONL file of conversations whose last user turn
// is the request judged (eval/benchmark_registry.h, load_conversations).

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <set>

#include "common/error.h"
#include "common/sha256.h"
#include "eval/prompt_loaders.h"

namespace kvsafe::eval {

Benchmark load_conversations(const std::filesystem::path& file, std::string_view display) {
  std::error_code ec;
  KVSAFE_CHECK(std::filesystem::is_regular_file(file, ec), "conversations file ", display, " (", file.string(),
               ") does not exist");
  const std::string bytes = detail::read_file_bytes(file);
  Benchmark benchmark{.name = "conversations", .data_dir = file.parent_path()};
  std::set<std::string> ids;
  detail::for_each_line(bytes, [&](std::string_view line, std::int64_t line_number, std::size_t line_offset) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
    const auto where = [&] { return fmt::format("{}:{}", display, line_number); };
    const nlohmann::json entry = detail::parse_json_line(line, where(), line_offset);
    KVSAFE_CHECK(entry.is_object(), where(), ": expected a JSON object with \"messages\"");
    for (const auto& [key, value] : entry.items()) {
      KVSAFE_CHECK(key == "id" || key == "messages" || key == "harmful" || key == "category", where(),
                   ": unknown key \"", key, "\" (known: id, messages, harmful, category)");
    }
    KVSAFE_CHECK(entry.contains("messages") && entry["messages"].is_array() && !entry["messages"].empty(), where(),
                 ": \"messages\" must be a non-empty array of {\"role\", \"content\"}");
    Prompt prompt;
    const nlohmann::json& messages = entry["messages"];
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const nlohmann::json& m = messages[i];
      KVSAFE_CHECK(m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("content") &&
                       m["content"].is_string(),
                   where(), ": messages[", i, "] needs a string \"role\" and a string \"content\"");
      const std::string role = m["role"].get<std::string>();
      KVSAFE_CHECK(role != "system", where(), ": messages[", i,
                   "] is a system turn; the system prompt is the grid's (generation.system_prompt)");
      const std::string expected = i % 2 == 0 ? "user" : "assistant";
      KVSAFE_CHECK(role == expected, where(), ": messages[", i, "] has role \"", role, "\", expected \"", expected,
                   "\" (turns alternate, starting with the user)");
      prompt.prior_turns.push_back({.role = role, .content = m["content"].get<std::string>()});
    }
    KVSAFE_CHECK(prompt.prior_turns.back().role == "user", where(),
                 ": the last message must be the user's (the request the answer is judged on)");
    prompt.text = std::move(prompt.prior_turns.back().content);
    prompt.prior_turns.pop_back();
    if (entry.contains("id")) {
      KVSAFE_CHECK(entry["id"].is_string() && !entry["id"].get<std::string>().empty(), where(),
                   ": \"id\" must be a non-empty string");
      prompt.prompt_id = entry["id"].get<std::string>();
    } else {
      prompt.prompt_id = fmt::format("conv-{}", line_number);
    }
    KVSAFE_CHECK(ids.insert(prompt.prompt_id).second, where(), ": id \"", prompt.prompt_id, "\" appears twice");
    if (entry.contains("harmful")) {
      KVSAFE_CHECK(entry["harmful"].is_boolean(), where(), ": \"harmful\" must be true or false");
      prompt.harmful = entry["harmful"].get<bool>();
    }
    if (entry.contains("category")) {
      KVSAFE_CHECK(entry["category"].is_string(), where(), ": \"category\" must be a string");
      prompt.category = entry["category"].get<std::string>();
    }
    detail::finish_prompt(prompt, file.filename().string(), line_number);
    // The stored hash names the whole conversation, not only its last turn.
    prompt.text_sha256 = sha256_hex(messages.dump());
    benchmark.prompts.push_back(std::move(prompt));
  });
  KVSAFE_CHECK(!benchmark.prompts.empty(), "conversations file ", display, " holds no conversation");
  benchmark.content_sha256 = detail::content_sha256(benchmark.prompts);
  return benchmark;
}

}  // namespace kvsafe::eval
