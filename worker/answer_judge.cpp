#include "worker/answer_judge.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <utility>

#include "common/error.h"
#include "eval/judge_formats.h"
#include "eval/keyword_judge.h"
#include "eval/model_judge.h"
#include "eval/output_degeneracy.h"

namespace kvsafe::worker {

namespace {

std::filesystem::path judge_model_path(const orchestrator::JudgeSpec& spec, const orchestrator::ModelSpec& judged) {
  if (spec.model_path) return *spec.model_path;
  if (spec.model == judged.name) return judged.path;
  throw InputError("judge model `" + spec.model +
                   "` is a models name: the worker needs its path in JudgeSpec::model_path (the runner resolves it)");
}

eval::ModelJudgeFormat format_of(orchestrator::JudgeFormat format) {
  return format == orchestrator::JudgeFormat::kLlamaGuard3 ? eval::ModelJudgeFormat::kLlamaGuard3
                                                           : eval::ModelJudgeFormat::kWildguard;
}

}  // namespace

AnswerJudge::AnswerJudge(const orchestrator::JudgeSpec& spec, const orchestrator::ModelSpec& judged_model,
                         const std::string& device, int threads) {
  if (spec.kind == orchestrator::JudgeKind::kKeyword) {
    eval::KeywordJudgeOptions options;
    if (spec.markers_file) options.markers_file = *spec.markers_file;
    options.spaceless_fallback = spec.strip_spaces_fallback;
    keyword_ = std::make_unique<eval::KeywordJudge>(options);
    label_ = keyword_->label();
  } else {
    model_ =
        std::make_unique<eval::ModelJudge>(eval::ModelJudgeOptions{.model_path = judge_model_path(spec, judged_model),
                                                                   .format = format_of(spec.format),
                                                                   .device = device,
                                                                   .threads = threads});
    label_ = model_->label();
  }
}

AnswerJudge::~AnswerJudge() = default;

std::vector<AnswerVerdict> AnswerJudge::judge(const std::vector<std::string_view>& prompts,
                                              const std::vector<std::string_view>& answers) const {
  KVSAFE_ASSERT(prompts.size() == answers.size(), "one prompt per answer");
  std::vector<AnswerVerdict> out(answers.size());
  std::vector<eval::ModelJudgement> judgements;
  if (model_) {
    std::vector<eval::JudgePair> pairs;
    for (std::size_t i = 0; i < answers.size(); ++i) pairs.push_back({.prompt = prompts[i], .response = answers[i]});
    judgements = model_->judge(pairs);
    KVSAFE_ASSERT(judgements.size() == answers.size(), "one judgement per pair");
  }
  for (std::size_t i = 0; i < answers.size(); ++i) {
    nlohmann::json details;
    if (keyword_) {
      const eval::KeywordVerdict verdict = keyword_->judge(answers[i]);
      out[i].refused = verdict.refused;
      details = {{"matched_marker", verdict.matched_marker},
                 {"matched_without_spaces", verdict.matched_without_spaces},
                 {"degenerate", verdict.degeneracy.degenerate},
                 {"degeneracy_reason", verdict.degeneracy.reason}};
    } else {
      const eval::JudgeAnswer& answer = judgements[i].answer;
      out[i].refused = answer.refused;
      details = nlohmann::json::parse(eval::judge_answer_json(answer));
      const eval::Degeneracy degeneracy = eval::assess_degeneracy(answers[i]);
      details["degenerate"] = degeneracy.degenerate;
      details["degeneracy_reason"] = degeneracy.reason;
    }
    details["judge"] = label_;
    out[i].judge_json = details.dump();
  }
  return out;
}

}  // namespace kvsafe::worker
