#include "eval/judge_spec.h"

namespace kvsafe::eval {

std::string_view to_string(JudgeKind kind) {
  switch (kind) {
    case JudgeKind::kKeyword:
      return "keyword";
    case JudgeKind::kModel:
      return "model";
  }
  return "?";
}

std::optional<JudgeKind> parse_judge_kind(std::string_view text) {
  for (const JudgeKind kind : {JudgeKind::kKeyword, JudgeKind::kModel}) {
    if (to_string(kind) == text) return kind;
  }
  return std::nullopt;
}

std::string_view to_string(ModelJudgeFormat format) {
  switch (format) {
    case ModelJudgeFormat::kWildguard:
      return "wildguard";
    case ModelJudgeFormat::kLlamaGuard3:
      return "llama_guard3";
  }
  return "?";
}

std::optional<ModelJudgeFormat> parse_model_judge_format(std::string_view text) {
  for (const ModelJudgeFormat format : {ModelJudgeFormat::kWildguard, ModelJudgeFormat::kLlamaGuard3}) {
    if (to_string(format) == text) return format;
  }
  return std::nullopt;
}

}  // namespace kvsafe::eval
