// Loader for one-prompt-per-line text files (the paper's custom prompts), and the line and
// JSON-line helpers the JSONL loaders share.

#include <fmt/format.h>

#include "common/error.h"
#include "common/sha256.h"
#include "eval/prompt_loaders.h"

namespace kvsafe::eval::detail {
namespace {

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n\f\v";
  const std::size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kSpace) - begin + 1);
}

}  // namespace

void for_each_line(std::string_view bytes,
                   const std::function<void(std::string_view text, std::int64_t number, std::size_t offset)>& line) {
  std::int64_t number = 0;
  std::size_t start = 0;
  while (start < bytes.size()) {
    std::size_t end = bytes.find('\n', start);
    if (end == std::string_view::npos) end = bytes.size();
    line(bytes.substr(start, end - start), ++number, start);
    start = end + 1;
  }
}

nlohmann::json parse_json_line(std::string_view line, std::string_view where, std::size_t offset) {
  try {
    return nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& error) {
    // nlohmann counts bytes from 1 (the byte it stopped at).
    KVSAFE_CHECK(false, where, ": not valid JSON at byte ", offset + error.byte - (error.byte > 0 ? 1 : 0),
                 " of the file: ", error.what());
  }
  return {};
}

void finish_prompt(Prompt& prompt, std::string_view relative_path, std::int64_t line) {
  prompt.source_file = std::string(relative_path);
  prompt.source_line = line;
  prompt.text_sha256 = sha256_hex(prompt.text);
}

std::vector<Prompt> load_prompt_lines(const std::filesystem::path& data_dir, std::string_view relative_path,
                                      std::string_view subset) {
  const std::string bytes = read_file_bytes(data_dir / relative_path);
  std::vector<Prompt> prompts;
  for_each_line(bytes, [&](std::string_view text, std::int64_t line_number, std::size_t) {
    const std::string_view line = trim(text);
    if (line.empty() || line.front() == '#') return;
    Prompt prompt;
    prompt.text = std::string(line);
    prompt.prompt_id = fmt::format("{}-{:03}", subset, prompts.size() + 1);
    prompt.harmful = true;
    prompt.subset = std::string(subset);
    prompt.category = std::string(subset);
    finish_prompt(prompt, relative_path, line_number);
    prompts.push_back(std::move(prompt));
  });
  return prompts;
}

}  // namespace kvsafe::eval::detail
