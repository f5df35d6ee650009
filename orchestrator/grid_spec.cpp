#include "orchestrator/grid_spec.h"

#include <cctype>
#include <charconv>
#include <regex>
#include <string>

namespace kvsafe::orchestrator {

const std::vector<std::string_view>& diagnosis_task_names() {
  static const std::vector<std::string_view> names = {"layer_ablation",   "cumulative",       "pcr",
                                                      "pcr_validation",   "protection_sweep", "mitigation",
                                                      "channel_ablation", "mitigate"};
  return names;
}

std::string_view to_string(DiagnosisTask task) {
  return diagnosis_task_names()[static_cast<std::size_t>(task)];
}

std::optional<DiagnosisTask> parse_diagnosis_task(std::string_view text) {
  const auto& names = diagnosis_task_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == text) return static_cast<DiagnosisTask>(i);
  }
  return std::nullopt;
}

std::string_view to_string(GridProfile profile) {
  return profile == GridProfile::kPaper ? "paper" : "kvsafe";
}

GenerationSettings default_generation(GridProfile profile) {
  GenerationSettings settings;
  settings.strip_prompts = profile == GridProfile::kPaper;
  settings.clean_answers = profile == GridProfile::kPaper;
  settings.paper_bos = profile == GridProfile::kPaper;
  settings.use_generation_config = profile == GridProfile::kPaper;
  settings.tokenizer_pad = profile == GridProfile::kPaper;
  settings.zero_padding_queries = profile == GridProfile::kPaper;
  return settings;
}

std::string_view to_string(SpeculativeQuantize quantize) {
  switch (quantize) {
    case SpeculativeQuantize::kTarget:
      return "target";
    case SpeculativeQuantize::kDraft:
      return "draft";
    case SpeculativeQuantize::kBoth:
      return "both";
  }
  return "?";
}

std::string_view to_string(UnparsedVerdict rule) {
  return rule == UnparsedVerdict::kNotRefused ? "not_refused" : "unjudged";
}

std::string_view to_string(DType dtype) {
  switch (dtype) {
    case DType::kAuto:
      return "auto";
    case DType::kFloat32:
      return "float32";
    case DType::kBfloat16:
      return "bfloat16";
    case DType::kFloat16:
      return "float16";
  }
  return "?";
}

std::string_view to_string(ExcludeKey key) {
  switch (key) {
    case ExcludeKey::kModel:
      return "model";
    case ExcludeKey::kBenchmark:
      return "benchmark";
    case ExcludeKey::kTask:
      return "task";
    case ExcludeKey::kKv:
      return "kv";
    case ExcludeKey::kScheme:
      return "scheme";
    case ExcludeKey::kBits:
      return "bits";
    case ExcludeKey::kSymmetric:
      return "symmetric";
    case ExcludeKey::kGranularity:
      return "granularity";
    case ExcludeKey::kKeyGranularity:
      return "key_granularity";
    case ExcludeKey::kValueGranularity:
      return "value_granularity";
    case ExcludeKey::kGroupSize:
      return "group_size";
    case ExcludeKey::kResidual:
      return "residual";
    case ExcludeKey::kPlacement:
      return "placement";
    case ExcludeKey::kTemperature:
      return "temperature";
    case ExcludeKey::kSeed:
      return "seed";
    case ExcludeKey::kDraft:
      return "draft";
  }
  return "?";
}

std::optional<double> parse_parameter_count(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  double scale = 1.0;
  switch (text.back()) {
    case 'k':
    case 'K':
      scale = 1e3;
      break;
    case 'm':
    case 'M':
      scale = 1e6;
      break;
    case 'b':
    case 'B':
    case 'g':
    case 'G':
      scale = 1e9;
      break;
    case 't':
    case 'T':
      scale = 1e12;
      break;
    default:
      break;
  }
  if (scale != 1.0) text.remove_suffix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !(value > 0)) return std::nullopt;
  return value * scale;
}

std::optional<double> infer_parameter_count(std::string_view model_name) {
  // A size token between separators: "-7B-", "_135m", "-8x7B-" (mixture of experts).
  static const std::regex kSize(R"((?:^|[-_/ ])(?:(\d+)x)?(\d+(?:\.\d+)?)([bBmM])(?=$|[-_/ ]))");
  const std::string name(model_name);
  std::smatch match;
  if (!std::regex_search(name, match, kSize)) return std::nullopt;
  const double experts = match[1].matched ? std::stod(match[1].str()) : 1.0;
  const double size = std::stod(match[2].str());
  const char unit = match[3].str()[0];
  return experts * size * ((unit == 'b' || unit == 'B') ? 1e9 : 1e6);
}

std::optional<double> ModelSpec::parameter_count() const {
  if (params) return params;
  return infer_parameter_count(name);
}

const ModelSpec* GridSpec::find_model(std::string_view model_name) const {
  for (const ModelSpec& m : models) {
    if (m.name == model_name) return &m;
  }
  return nullptr;
}

}  // namespace kvsafe::orchestrator
