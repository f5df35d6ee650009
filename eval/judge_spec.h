#pragma once
// The judges a grid (`judge:`) or `kvsafe judge` may name: their kinds and the model judges'
// answer formats, with one spelling each. Dependency-free (target kvsafe_eval_spec), so the
// grid parser (orchestrator/) and the judges (eval/refusal_judge.h) share one enum.

#include <optional>
#include <string_view>

namespace kvsafe::eval {

enum class JudgeKind { kKeyword, kModel };

// "keyword", "model".
std::string_view to_string(JudgeKind kind);
// Inverse of to_string; nullopt for any other text.
std::optional<JudgeKind> parse_judge_kind(std::string_view text);

// The model judges' prompt and answer formats (eval/judge_formats.h).
enum class ModelJudgeFormat { kWildguard, kLlamaGuard3 };

// "wildguard", "llama_guard3".
std::string_view to_string(ModelJudgeFormat format);
// Inverse of to_string; nullopt for any other text.
std::optional<ModelJudgeFormat> parse_model_judge_format(std::string_view text);

}  // namespace kvsafe::eval
