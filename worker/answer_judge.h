#pragma once
// AnswerJudge: the grid's refusal judge as a worker runs it on a batch of answers: the
// keyword judge (eval/keyword_judge.h) or a model judge (eval/model_judge.h), one verdict
// and one judge_json per answer.
//
// judge_json always holds "judge" (the judge's label), "degenerate" and "degeneracy_reason"
// (eval/output_degeneracy.h, assessed for every judge); the keyword judge adds
// "matched_marker" and "matched_without_spaces", a model judge its parsed answer
// (eval::judge_answer_json: "parsed", "error", "raw", ...). An unparsed model answer has no
// verdict (refused empty), never "complied".
//
// A model judge loads a second model beside the judged one and keeps it for the worker's
// life: the grid asked for it, so it is taken to fit.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orchestrator/grid_spec.h"

namespace kvsafe::eval {
class KeywordJudge;
class ModelJudge;
}  // namespace kvsafe::eval

namespace kvsafe::worker {

struct AnswerVerdict {
  std::optional<bool> refused{};  // empty: the judge reached no verdict
  std::string judge_json{};       // compact JSON object, see above
};

class AnswerJudge {
 public:
  // Keyword: markers_file / strip_spaces_fallback of `spec`. Model: the judge model at
  // spec.model_path, else spec.model when it is the judged model's grid name
  // (`judged_model`), else InputError (a `models` name must reach the worker as a path).
  // Throws InputError naming the file when markers or the judge model cannot be loaded.
  AnswerJudge(const orchestrator::JudgeSpec& spec, const orchestrator::ModelSpec& judged_model,
              const std::string& device, int threads);
  ~AnswerJudge();
  AnswerJudge(const AnswerJudge&) = delete;
  AnswerJudge& operator=(const AnswerJudge&) = delete;

  // One verdict per (prompt, answer), in order. prompts.size() must equal answers.size().
  std::vector<AnswerVerdict> judge(const std::vector<std::string_view>& prompts,
                                   const std::vector<std::string_view>& answers) const;

  const std::string& label() const { return label_; }

 private:
  std::unique_ptr<eval::KeywordJudge> keyword_;
  std::unique_ptr<eval::ModelJudge> model_;
  std::string label_;
};

}  // namespace kvsafe::worker
