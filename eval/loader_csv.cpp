// Loader for the CSV benchmarks: one column mapping per benchmark, RFC 4180 parsing in
// csv_reader.cpp.

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "eval/csv_reader.h"
#include "eval/prompt_loaders.h"

namespace kvsafe::eval::detail {

std::string read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  KVSAFE_CHECK(in, path.string(), ": cannot open");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  KVSAFE_CHECK(!in.bad(), path.string(), ": read error");
  return buffer.str();
}

std::vector<Prompt> load_prompt_csv(const std::filesystem::path& data_dir, std::string_view relative_path,
                                    std::string_view benchmark) {
  CsvTable table = parse_csv(read_file_bytes(data_dir / relative_path), std::string(relative_path));
  std::vector<Prompt> prompts;
  prompts.reserve(table.records.size());
  const auto where = [&](const CsvRecord& record) { return fmt::format("{}:{}", relative_path, record.line); };

  if (benchmark == "advbench") {
    const std::size_t goal = table.column("goal");
    for (const CsvRecord& record : table.records) {
      Prompt prompt{.prompt_id = fmt::format("advbench-{:04}", prompts.size() + 1), .text = record.fields[goal]};
      finish_prompt(prompt, relative_path, record.line);
      prompts.push_back(std::move(prompt));
    }
  } else if (benchmark == "harmbench") {
    const std::size_t behavior = table.column("Behavior");
    const std::size_t functional = table.column("FunctionalCategory");
    const std::size_t semantic = table.column("SemanticCategory");
    const std::size_t id = table.column("BehaviorID");
    for (const CsvRecord& record : table.records) {
      // NOTE: contextual rows need their ContextString and copyright rows a hash-based
      // classifier; the paper (and plain refusal rates) keep the standard rows only.
      if (record.fields[functional] != "standard") continue;
      KVSAFE_CHECK(!record.fields[id].empty(), where(record), ": empty BehaviorID");
      Prompt prompt{.prompt_id = record.fields[id],
                    .text = record.fields[behavior],
                    .category = record.fields[semantic],
                    .subset = record.fields[functional]};
      finish_prompt(prompt, relative_path, record.line);
      prompts.push_back(std::move(prompt));
    }
  } else if (benchmark == "xstest") {
    const std::size_t id = table.column("id");
    const std::size_t text = table.column("prompt");
    const std::size_t type = table.column("type");
    const std::size_t label = table.column("label");
    const std::size_t focus = table.column("focus");
    for (const CsvRecord& record : table.records) {
      const std::string& verdict = record.fields[label];
      KVSAFE_CHECK(verdict == "safe" || verdict == "unsafe", where(record), ": label must be safe or unsafe, got '",
                   verdict, "'");
      Prompt prompt{.prompt_id = "xstest-" + record.fields[id],
                    .text = record.fields[text],
                    .harmful = verdict == "unsafe",
                    .category = record.fields[type],
                    .subset = verdict,
                    .focus = record.fields[focus]};
      finish_prompt(prompt, relative_path, record.line);
      prompts.push_back(std::move(prompt));
    }
  } else if (benchmark == "jailbreakbench") {
    const std::size_t index = table.column("");  // the unnamed pandas index column
    const std::size_t goal = table.column("Goal");
    const std::size_t category = table.column("Category");
    const std::size_t source = table.column("Source");
    for (const CsvRecord& record : table.records) {
      Prompt prompt{.prompt_id = "jbb-" + record.fields[index],
                    .text = record.fields[goal],
                    .category = record.fields[category],
                    .subset = record.fields[source]};
      finish_prompt(prompt, relative_path, record.line);
      prompts.push_back(std::move(prompt));
    }
  } else if (benchmark == "strongreject") {
    const std::size_t category = table.column("category");
    const std::size_t source = table.column("source");
    const std::size_t text = table.column("forbidden_prompt");
    for (const CsvRecord& record : table.records) {
      Prompt prompt{.prompt_id = fmt::format("strongreject-{:03}", prompts.size() + 1),
                    .text = record.fields[text],
                    .category = record.fields[category],
                    .subset = record.fields[source]};
      finish_prompt(prompt, relative_path, record.line);
      prompts.push_back(std::move(prompt));
    }
  } else {
    KVSAFE_ASSERT(false, "no CSV column mapping for benchmark '", benchmark, "'");
  }
  for (const Prompt& prompt : prompts) {
    KVSAFE_CHECK(!prompt.text.empty(), relative_path, ":", prompt.source_line, ": empty prompt text");
  }
  return prompts;
}

}  // namespace kvsafe::eval::detail
