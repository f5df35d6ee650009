#include "worker/judge_options.h"

#include <algorithm>
#include <filesystem>

#include "common/error.h"

namespace kvsafe::worker {
namespace {

std::filesystem::path judge_model_path(const orchestrator::JudgeSpec& spec, const orchestrator::ModelSpec& judged) {
  if (spec.model_path) return *spec.model_path;
  if (spec.model == judged.name) return judged.path;
  throw InputError("judge model `" + spec.model +
                   "` is a models name: the worker needs its path in JudgeSpec::model_path (the runner resolves it)");
}

}  // namespace

eval::RefusalJudgeOptions refusal_judge_options(const orchestrator::JudgeSpec& spec,
                                                const orchestrator::ModelSpec& judged_model, const std::string& device,
                                                int threads) {
  eval::RefusalJudgeOptions options{.kind = spec.kind};
  if (spec.kind == eval::JudgeKind::kKeyword) {
    if (spec.markers_file) options.keyword.markers_file = *spec.markers_file;
    options.keyword.spaceless_fallback =
        spec.strip_spaces_fallback || std::find(spec.strip_spaces_models.begin(), spec.strip_spaces_models.end(),
                                                judged_model.name) != spec.strip_spaces_models.end();
    options.keyword.normalize_apostrophes = !spec.exact_apostrophes;
    if (!spec.strip_spaces_fallback) {
      for (const std::string& name : spec.strip_spaces_models) {
        options.keyword.spaceless_models += (options.keyword.spaceless_models.empty() ? "" : ",") + name;
      }
    }
  } else {
    options.model = {.model_path = judge_model_path(spec, judged_model),
                     .format = spec.format,
                     .device = device,
                     .threads = threads};
    if (spec.template_file) options.model.template_file = *spec.template_file;
  }
  return options;
}

}  // namespace kvsafe::worker
