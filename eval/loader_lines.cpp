// Loader for one-prompt-per-line text files (the paper's custom prompts).

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

void finish_prompt(Prompt& prompt, std::string_view relative_path, std::int64_t line) {
  prompt.source_file = std::string(relative_path);
  prompt.source_line = line;
  prompt.text_sha256 = sha256_hex(prompt.text);
}

std::vector<Prompt> load_prompt_lines(const std::filesystem::path& data_dir, std::string_view relative_path,
                                      std::string_view subset) {
  const std::string bytes = read_file_bytes(data_dir / relative_path);
  std::vector<Prompt> prompts;
  std::int64_t line_number = 0;
  std::size_t start = 0;
  while (start < bytes.size()) {
    std::size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    ++line_number;
    const std::string_view line = trim(std::string_view(bytes).substr(start, end - start));
    start = end + 1;
    if (line.empty() || line.front() == '#') continue;
    Prompt prompt;
    prompt.text = std::string(line);
    prompt.prompt_id = fmt::format("{}-{:03}", subset, prompts.size() + 1);
    prompt.harmful = true;
    prompt.subset = std::string(subset);
    prompt.category = std::string(subset);
    finish_prompt(prompt, relative_path, line_number);
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

}  // namespace kvsafe::eval::detail
