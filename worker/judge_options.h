#pragma once
// The grid's refusal judge (orchestrator::JudgeSpec) as eval::RefusalJudgeOptions for a
// worker: the judge a worker builds once, at its first generation shard, and keeps for its
// life (a model judge is a second model beside the judged one; the grid asked for it, so it
// is taken to fit).

#include <string>

#include "eval/refusal_judge.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::worker {

// Keyword: markers_file, the apostrophe rule, and the spaceless fallback when
// strip_spaces_fallback is on or `judged_model` is one of strip_spaces_models (so the options
// depend on the judged model: a worker rebuilds its keyword judge when they change). Model: the
// judge model at
// spec.model_path, else spec.model when it is the judged model's grid name (`judged_model`),
// else InputError (a `models` name must reach the worker as a path); run on `device` with
// `threads`, the judge's other settings at their defaults.
eval::RefusalJudgeOptions refusal_judge_options(const orchestrator::JudgeSpec& spec,
                                                const orchestrator::ModelSpec& judged_model, const std::string& device,
                                                int threads);

}  // namespace kvsafe::worker
