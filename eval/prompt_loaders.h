#pragma once
// Internal to eval/: one loader per file format, used by benchmark_registry.cpp. Each takes
// the data directory and a relative path, and returns prompts in file order with
// source_file, source_line and text_sha256 filled. They throw InputError naming file:line
// for malformed content; the registry checks that the files exist before calling them.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "eval/benchmark_registry.h"

namespace kvsafe::eval::detail {

// Text files of one prompt per line (the paper's data/prompts/*.txt): lines starting with
// '#' are comments, blank lines are skipped, and each prompt is the line with surrounding
// whitespace removed (the paper's loader strips its lines). ids: "<subset>-001", ...
std::vector<Prompt> load_prompt_lines(const std::filesystem::path& data_dir, std::string_view relative_path,
                                      std::string_view subset);

// The CSV benchmarks; `benchmark` selects the column mapping (advbench, harmbench, xstest,
// jailbreakbench, strongreject).
std::vector<Prompt> load_prompt_csv(const std::filesystem::path& data_dir, std::string_view relative_path,
                                    std::string_view benchmark);

// A refusal_direction split: a JSON array of {"instruction": str, "category": str|null}.
std::vector<Prompt> load_prompt_json(const std::filesystem::path& data_dir, std::string_view relative_path,
                                     bool harmful);

// IFEval's input_data.jsonl: one JSON object per line with "key", "prompt",
// "instruction_id_list" and "kwargs". ids "ifeval-<key>"; benign; category = the instruction ids
// joined by ","; ifeval_instructions = {"instruction_id_list", "kwargs"} of the line. A line that
// is not such an object is an InputError naming file:line (and byte offset for bad JSON).
std::vector<Prompt> load_ifeval_jsonl(const std::filesystem::path& data_dir, std::string_view relative_path);

// Calls `line(text, number, offset)` for each line of `bytes` ('\n'-separated, the '\n' left
// out; a last line without one included): its 1-based number and the byte offset it starts at.
void for_each_line(std::string_view bytes,
                   const std::function<void(std::string_view text, std::int64_t number, std::size_t offset)>& line);

// One JSON value per line (JSONL): parses `line`, which starts at byte `offset` of the file;
// InputError "<where>: not valid JSON at byte N of the file: ..." otherwise.
nlohmann::json parse_json_line(std::string_view line, std::string_view where, std::size_t offset);

// Reads a whole file as bytes (InputError naming the path when it cannot).
std::string read_file_bytes(const std::filesystem::path& path);

// Benchmark::content_sha256 of these prompts.
std::string content_sha256(const std::vector<Prompt>& prompts);

// Fills text_sha256 and the source fields of a prompt.
void finish_prompt(Prompt& prompt, std::string_view relative_path, std::int64_t line);

}  // namespace kvsafe::eval::detail
