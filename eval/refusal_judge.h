#pragma once
// RefusalJudge: whether answers refused, by whichever judge a grid's `judge:` section or
// `kvsafe judge` names — the keyword judge (keyword_judge.h) or a model judge
// (model_judge.h) — with one verdict shape for both, so that `kvsafe run`'s rows and
// `kvsafe judge`'s rows say the same things.
//
//   RefusalJudge judge({.kind = JudgeKind::kKeyword});
//   std::vector<RefusalVerdict> verdicts = judge.judge(pairs);
//
// A verdict's `detail` (a JSON object) always holds "degenerate" and "degeneracy_reason"
// (output_degeneracy.h, assessed for every judge). The keyword judge adds "matched_marker" and
// "matched_without_spaces"; a model judge its parsed answer (judge_formats.h: "parsed",
// "refused", "harmful_request", "harmful_response", "categories", "trailing", "error") and
// "judge_prompt_tokens", "judge_output_tokens", "judge_stopped" (the judge's own generation).
// The judge's raw output is `raw_output`, not in `detail`. An unparsed model answer has no
// verdict (refused empty), never "complied".

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "eval/judge_spec.h"
#include "eval/keyword_judge.h"
#include "eval/model_judge.h"

namespace kvsafe::eval {

struct RefusalJudgeOptions {
  JudgeKind kind = JudgeKind::kKeyword;
  KeywordJudgeOptions keyword{};  // kind keyword
  ModelJudgeOptions model{};      // kind model
};

struct RefusalVerdict {
  std::optional<bool> refused{};  // empty: the judge reached no verdict
  std::string raw_output{};       // model: the judge's output as generated; keyword: the matched marker
  nlohmann::json detail{};        // see above
};

class RefusalJudge {
 public:
  // Loads the markers or the judge model; throws InputError / ModelFileError naming the file
  // when they cannot be loaded.
  explicit RefusalJudge(const RefusalJudgeOptions& options);
  ~RefusalJudge();
  RefusalJudge(const RefusalJudge&) = delete;
  RefusalJudge& operator=(const RefusalJudge&) = delete;

  // One verdict per pair, in order. The keyword judge reads only the responses.
  std::vector<RefusalVerdict> judge(std::span<const JudgePair> pairs) const;

  JudgeKind kind() const { return kind_; }
  // "keyword:default:substring", "model:<file>:wildguard", ...
  const std::string& label() const { return label_; }
  // Canonical JSON of everything that decides the verdicts (db/judgements.h keys stored
  // judgements by it): the markers' content and match rule, or ModelJudge::spec_json().
  const std::string& spec_json() const { return spec_json_; }
  // Answers judged per call that keep a model judge's batches full (keyword: any number).
  std::int64_t preferred_batch() const;

 private:
  JudgeKind kind_;
  std::unique_ptr<KeywordJudge> keyword_;
  std::unique_ptr<ModelJudge> model_;
  std::string label_;
  std::string spec_json_;
};

}  // namespace kvsafe::eval
