// Loader for IFEval's input_data.jsonl: one prompt per line, each with the instructions its
// answer is scored against (eval/ifeval_instructions.h reads them back from the prompt).

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <set>

#include "common/error.h"
#include "eval/prompt_loaders.h"

namespace kvsafe::eval::detail {

std::vector<Prompt> load_ifeval_jsonl(const std::filesystem::path& data_dir, std::string_view relative_path) {
  const std::string bytes = read_file_bytes(data_dir / relative_path);
  std::vector<Prompt> prompts;
  std::set<std::int64_t> keys;
  for_each_line(bytes, [&](std::string_view line, std::int64_t line_number, std::size_t line_offset) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
    const auto where = [&] { return fmt::format("{}:{}", relative_path, line_number); };
    const nlohmann::json entry = parse_json_line(line, where(), line_offset);
    KVSAFE_CHECK(entry.is_object(), where(), ": expected a JSON object");
    KVSAFE_CHECK(entry.contains("key") && entry["key"].is_number_integer(), where(), ": no integer \"key\"");
    KVSAFE_CHECK(entry.contains("prompt") && entry["prompt"].is_string(), where(), ": no string \"prompt\"");
    KVSAFE_CHECK(entry.contains("instruction_id_list") && entry["instruction_id_list"].is_array(), where(),
                 ": no array \"instruction_id_list\"");
    KVSAFE_CHECK(entry.contains("kwargs") && entry["kwargs"].is_array(), where(), ": no array \"kwargs\"");
    KVSAFE_CHECK(entry["kwargs"].size() == entry["instruction_id_list"].size(), where(), ": \"kwargs\" has ",
                 entry["kwargs"].size(), " entries, \"instruction_id_list\" ", entry["instruction_id_list"].size());
    const auto key = entry["key"].get<std::int64_t>();
    KVSAFE_CHECK(keys.insert(key).second, where(), ": key ", key, " appears twice");
    Prompt prompt;
    prompt.text = entry["prompt"].get<std::string>();
    prompt.prompt_id = fmt::format("ifeval-{}", key);
    prompt.harmful = false;
    for (const nlohmann::json& id : entry["instruction_id_list"]) {
      KVSAFE_CHECK(id.is_string(), where(), ": an instruction id is not a string");
      prompt.category += (prompt.category.empty() ? "" : ",") + id.get<std::string>();
    }
    const nlohmann::json instructions = {{"instruction_id_list", entry["instruction_id_list"]},
                                         {"kwargs", entry["kwargs"]}};
    prompt.ifeval_instructions = instructions.dump();
    finish_prompt(prompt, relative_path, line_number);
    prompts.push_back(std::move(prompt));
  });
  return prompts;
}

}  // namespace kvsafe::eval::detail
