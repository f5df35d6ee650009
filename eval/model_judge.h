#pragma once
// ModelJudge: a chat model loaded by the engine judges (prompt, response) pairs in one of the
// formats of judge_formats.h (WildGuard, Llama-Guard-3): each pair is rendered into the judge
// template, the batch is generated greedily (engine::Generator, left padding), and each output
// is parsed. Every output is kept raw; an output the parser cannot read is an unparsed answer
// (no verdict), never an exception.
//
//   ModelJudge judge({.model_path = "wildguard.gguf", .format = ModelJudgeFormat::kWildguard});
//   std::vector<ModelJudgement> out = judge.judge(pairs);   // one per pair, in order
//
// How the judge prompt reaches the model:
//  - a built-in template (judge_formats.h) is one user message rendered with the judge model's
//    chat template (options.chat_template, else the model's own) with no system turn
//    (SystemPromptMode::kNone: a judge follows its own instruction, not a default persona);
//    a model without a chat template (stories260K) gets the text tokenized as is;
//  - a template file is a complete raw prompt (e.g. WildGuard's own "<|user|>\n[INST] ..."),
//    tokenized as is with special-token parsing on.
// Greedy, so the same judge gives the same verdicts on the same pairs.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eval/judge_formats.h"

namespace kvsafe::engine {
class Model;
class Tokenizer;
}  // namespace kvsafe::engine

namespace kvsafe::eval {

struct ModelJudgeOptions {
  std::filesystem::path model_path{};                      // judge model: GGUF file or HF folder
  ModelJudgeFormat format = ModelJudgeFormat::kWildguard;  // prompt and answer format
  std::filesystem::path template_file{};                   // empty: builtin_judge_template(format); else raw file
  std::string chat_template{};                             // built-in chat template name; empty: the model's own
  std::int64_t max_new_tokens = 32;  // the answers are short: WildGuard ~20 tokens, Llama Guard <= 10
  std::int64_t batch_size = 8;       // pairs per generation batch
  std::string device = "cpu";        // engine device: "cpu", "cuda", "cuda:N"
  int threads = 0;                   // CPU intra-op threads; 0 = one per core
};

struct JudgePair {
  std::string_view prompt{};    // the user's request as the judged model saw it
  std::string_view response{};  // the judged model's answer
};

struct ModelJudgement {
  JudgeAnswer answer{};            // parsed verdict (or the reason it did not parse) and the raw output
  std::int64_t prompt_tokens = 0;  // tokens of the rendered judge prompt
  std::int64_t output_tokens = 0;  // tokens the judge generated
  bool stopped = false;            // the judge ended on a stop token (false: cut at max_new_tokens)
};

class ModelJudge {
 public:
  // Loads the model, its tokenizer, the chat template and the judge template. Throws
  // InputError / ModelFileError naming the file when any of them cannot be loaded.
  explicit ModelJudge(const ModelJudgeOptions& options);
  ~ModelJudge();
  ModelJudge(const ModelJudge&) = delete;
  ModelJudge& operator=(const ModelJudge&) = delete;

  // One judgement per pair, in input order, in batches of options.batch_size. Throws only
  // for engine failures (bad options, out of memory); never for what the model writes.
  std::vector<ModelJudgement> judge(std::span<const JudgePair> pairs) const;

  // The judge prompt token ids of one pair (what judge() feeds the model).
  std::vector<std::int32_t> judge_prompt_ids(const JudgePair& pair) const;
  // The judge prompt text of one pair before tokenization (chat template applied when used).
  std::string judge_prompt_text(const JudgePair& pair) const;

  // "model:<model file name>:<format>", for logs and tables.
  const std::string& label() const { return label_; }
  // Canonical JSON of everything that decides the verdicts: kind, model path and file name,
  // format, template source and sha256, chat template name (or "raw"), max_new_tokens.
  const std::string& spec_json() const { return spec_json_; }
  const JudgeTemplate& judge_template() const { return template_; }
  const ModelJudgeOptions& options() const { return options_; }

 private:
  struct State;
  ModelJudgeOptions options_;
  JudgeTemplate template_;
  std::unique_ptr<State> state_;
  std::string label_;
  std::string spec_json_;
};

}  // namespace kvsafe::eval
