#include "eval/refusal_judge.h"

#include "common/error.h"
#include "common/sha256.h"
#include "eval/output_degeneracy.h"

namespace kvsafe::eval {
namespace {

// Keyword verdicts come one answer at a time; this many per call keeps a caller's
// transactions few without holding much.
constexpr std::int64_t kKeywordBatch = 256;

std::string keyword_spec_json(const KeywordJudge& judge, const KeywordJudgeOptions& options) {
  std::string joined;
  for (const std::string& marker : judge.markers()) joined += marker + "\n";
  const nlohmann::json json = {
      {"kind", "keyword"},
      {"markers", options.markers_file.empty() ? std::string("default") : options.markers_file.string()},
      {"markers_sha256", sha256_hex(joined)},
      {"rule", to_string(options.rule)},
      {"spaceless_fallback", options.spaceless_fallback},
  };
  nlohmann::json spec = json;
  // NOTE: only when off, so the spec (and the judgements keyed by it) of kvsafe's default stays.
  if (!options.normalize_apostrophes) spec["normalize_apostrophes"] = false;
  return spec.dump();
}

nlohmann::json degeneracy_json(const Degeneracy& degeneracy) {
  return {{"degenerate", degeneracy.degenerate}, {"degeneracy_reason", degeneracy.reason}};
}

}  // namespace

RefusalJudge::RefusalJudge(const RefusalJudgeOptions& options) : kind_(options.kind) {
  if (kind_ == JudgeKind::kKeyword) {
    keyword_ = std::make_unique<KeywordJudge>(options.keyword);
    label_ = keyword_->label();
    spec_json_ = keyword_spec_json(*keyword_, options.keyword);
  } else {
    model_ = std::make_unique<ModelJudge>(options.model);
    label_ = model_->label();
    spec_json_ = model_->spec_json();
  }
}

RefusalJudge::~RefusalJudge() = default;

std::int64_t RefusalJudge::preferred_batch() const {
  return model_ ? model_->options().batch_size : kKeywordBatch;
}

std::vector<RefusalVerdict> RefusalJudge::judge(std::span<const JudgePair> pairs) const {
  std::vector<RefusalVerdict> verdicts(pairs.size());
  if (keyword_) {
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      const KeywordVerdict verdict = keyword_->judge(pairs[i].response);
      verdicts[i].refused = verdict.refused;
      verdicts[i].raw_output = verdict.matched_marker;
      verdicts[i].detail = degeneracy_json(verdict.degeneracy);
      verdicts[i].detail["matched_marker"] = verdict.matched_marker;
      verdicts[i].detail["matched_without_spaces"] = verdict.matched_without_spaces;
    }
    return verdicts;
  }
  const std::vector<ModelJudgement> judgements = model_->judge(pairs);
  KVSAFE_ASSERT(judgements.size() == pairs.size(), "one judgement per pair");
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const ModelJudgement& judgement = judgements[i];
    RefusalVerdict& verdict = verdicts[i];
    verdict.refused = judgement.answer.refused;
    verdict.raw_output = judgement.answer.raw;
    verdict.detail = nlohmann::json::parse(judge_answer_json(judgement.answer));
    verdict.detail.erase("raw");  // raw_output
    verdict.detail.update(degeneracy_json(assess_degeneracy(pairs[i].response)));
    verdict.detail["judge_prompt_tokens"] = judgement.prompt_tokens;
    verdict.detail["judge_output_tokens"] = judgement.output_tokens;
    verdict.detail["judge_stopped"] = judgement.stopped;
  }
  return verdicts;
}

}  // namespace kvsafe::eval
