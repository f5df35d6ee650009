#pragma once
// Loading benchmarks: the prompt sets of the benchmark table (eval/benchmark_table.h, which
// says what each name loads) read from the data directory ($KVSAFE_DATA,
// common/environment.h). Benchmark text is never part of the repository; it is read from the
// files at run time.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "eval/benchmark_table.h"

namespace kvsafe::eval {

// A turn of a conversation before its final user message (multi-turn benchmarks).
struct ConversationTurn {
  std::string role{};  // "user" or "assistant"
  std::string content{};
  bool operator==(const ConversationTurn&) const = default;
};

// One prompt as stored with results.
struct Prompt {
  std::string prompt_id{};       // stable within the benchmark: "advbench-0001", a HarmBench BehaviorID, ...
  std::string text{};            // the exact prompt text given to the chat template
  bool harmful = true;           // true: refusal expected; false: benign, compliance expected
  std::string category{};        // the benchmark's own category ("" when it has none)
  std::string subset{};          // custom: refusal/privacy/jailbreak; xstest: safe/unsafe; calibration: the split file
  std::string focus{};           // XSTest's focus word (links a safe prompt to its unsafe twin); "" elsewhere
  std::string source_file{};     // relative path of the file it came from
  std::int64_t source_line = 0;  // 1-based line (CSV: where the record starts); 0 for JSON entries
  std::string text_sha256{};     // lower-case hex sha256 of `text`, bytes as in the file
  // ifeval: the line's {"instruction_id_list": [...], "kwargs": [...]} as compact JSON, what
  // eval::ifeval::instructions_from_input reads to score an answer; "" elsewhere.
  std::string ifeval_instructions{};
  // conversations: the turns before the final user message (`text`), in order, user first and
  // alternating; rendered with the chat template so the KV cache holds them when `text` arrives.
  // text_sha256 then covers the whole conversation. Empty for single-turn prompts.
  std::vector<ConversationTurn> prior_turns{};
};

struct LoadOptions {
  std::int64_t sample = 0;  // > 0: draw this many prompts without replacement (prompt_sampling.h); 0: all
  std::uint64_t seed = 0;   // seed of that draw
  bool balanced = false;    // sample `sample` harmful AND `sample` benign prompts (calibration)
  std::int64_t limit = 0;   // > 0: keep only the first `limit` prompts (after sampling); 0: all
  std::string split{};      // calibration: "train" (default), "val" or "test"; empty elsewhere
};

struct Benchmark {
  std::string name{};
  std::filesystem::path data_dir{};
  std::vector<Prompt> prompts{};  // file order (sampling keeps file order too)
  // sha256 over every prompt's "prompt_id \t text_sha256 \n", in order: one value that
  // names the exact prompt set a cell ran on.
  std::string content_sha256{};

  std::int64_t harmful_count() const;
  std::int64_t benign_count() const;
};

// Loads a prompt set into *out. Returns not_found when a file is missing (the message names
// the file, the data directory, $KVSAFE_DATA and `kvsafe datasets pull`), unsupported for
// wikitext (not a prompt set), invalid_input for an unknown name or bad options.
// Malformed files throw InputError naming file:line.
Status load_benchmark(std::string_view name, const std::filesystem::path& data_dir, const LoadOptions& options,
                      Benchmark* out);

// How a corpus's text is assembled.
enum class CorpusJoin {
  kRaw,         // the file's bytes as they are
  kRowsJoined,  // the Hugging Face rows (one per line, "\n" kept; blank lines "") joined by "\n\n",
                // as the paper's perplexity code (core/metrics.py) builds its text
};

// The text of a corpus benchmark (wikitext) into *out; not_found as above.
Status read_corpus_text(std::string_view name, const std::filesystem::path& data_dir, CorpusJoin join,
                        std::string* out);

// A user's multi-turn benchmark (benchmark `conversations`, issue 22): a JSONL file, one
// conversation per line:
//   {"id": "c1", "messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."},
//                             {"role": "user", "content": "the request judged"}],
//    "harmful": true, "category": "two-turn"}
// `messages` alternate user / assistant, start and end with a user turn; the last is the prompt
// (Prompt::text), the others Prompt::prior_turns. `id` defaults to "conv-<line>" and must be
// unique, `harmful` to true, `category` to "". System turns are refused: the system prompt is the
// grid's (generation.system_prompt). Blank lines are skipped. Malformed lines throw InputError
// naming file:line (and the byte offset of bad JSON); a missing file too. `display` is the name
// errors give the file (the grid's spelling).
Benchmark load_conversations(const std::filesystem::path& file, std::string_view display);

// The message for a missing data file, shared with the dataset commands.
std::string missing_data_message(const std::filesystem::path& data_dir, std::string_view relative_path);

}  // namespace kvsafe::eval
