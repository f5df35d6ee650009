#include "eval/model_judge.h"

#include <optional>

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace kvsafe::eval {

struct ModelJudge::State {
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::optional<engine::ChatTemplate> chat;  // empty: the judge prompt is tokenized as is
  std::vector<engine::TokenId> stop_tokens;
  engine::TokenId pad_id = 0;
};

ModelJudge::ModelJudge(const ModelJudgeOptions& options) : options_(options), state_(std::make_unique<State>()) {
  KVSAFE_CHECK(options.max_new_tokens >= 1, "model judge: max_new_tokens must be >= 1, got ", options.max_new_tokens);
  KVSAFE_CHECK(options.batch_size >= 1, "model judge: batch_size must be >= 1, got ", options.batch_size);
  template_ = options.template_file.empty() ? builtin_judge_template(options.format)
                                            : load_judge_template(options.template_file);
  state_->model = engine::Model::load(options.model_path, {.device = options.device, .threads = options.threads});
  state_->tokenizer = engine::Tokenizer::load(options.model_path);
  if (!template_.raw) {
    if (!options.chat_template.empty()) {
      state_->chat = engine::ChatTemplate::by_name(options.chat_template);
    } else if (std::optional<std::string> text = engine::read_chat_template(options.model_path)) {
      state_->chat = engine::ChatTemplate::recognize(*text);
    } else {
      spdlog::warn("judge model {} has no chat template: the judge prompt is tokenized as plain text",
                   options.model_path.string());
    }
  }
  state_->stop_tokens = engine::default_stop_tokens(*state_->tokenizer);
  state_->pad_id = state_->tokenizer->eos_id().value_or(0);

  label_ = "model:" + options.model_path.filename().string() + ":" + std::string(to_string(options.format));
  // A template file changes the verdicts: the label says which, so tables do not mix the two.
  if (!options.template_file.empty()) label_ += ":" + options.template_file.filename().string();
  const nlohmann::json spec = {
      {"kind", "model"},
      {"model", options.model_path.filename().string()},
      {"model_path", options.model_path.string()},
      {"format", to_string(options.format)},
      {"template", template_.source},
      {"template_sha256", template_.sha256},
      {"chat_template", state_->chat ? state_->chat->name() : std::string("raw")},
      {"max_new_tokens", options.max_new_tokens},
  };
  spec_json_ = spec.dump();
}

ModelJudge::~ModelJudge() = default;

std::string ModelJudge::judge_prompt_text(const JudgePair& pair) const {
  std::string text = render_judge_prompt(template_, pair.prompt, pair.response);
  if (!state_->chat) return text;
  const std::vector<engine::ChatMessage> turns{{.role = engine::ChatRole::kUser, .content = std::move(text)}};
  return state_->chat->render(turns, {.system_mode = engine::SystemPromptMode::kNone}).text;
}

std::vector<std::int32_t> ModelJudge::judge_prompt_ids(const JudgePair& pair) const {
  const engine::Tokenizer& tokenizer = *state_->tokenizer;
  if (state_->chat) {
    const std::vector<engine::ChatMessage> turns{
        {.role = engine::ChatRole::kUser, .content = render_judge_prompt(template_, pair.prompt, pair.response)}};
    return state_->chat->tokenize(tokenizer, turns, {.system_mode = engine::SystemPromptMode::kNone}).ids;
  }
  std::vector<engine::TokenId> ids =
      tokenizer.encode(render_judge_prompt(template_, pair.prompt, pair.response), {.parse_special = true});
  // NOTE: a raw template may spell BOS itself (WildGuard's "<s><|user|>..."); with a tokenizer
  // that also adds one, BOS would be doubled.
  const std::optional<engine::TokenId> bos = tokenizer.bos_id();
  if (bos && ids.size() >= 2 && ids[0] == *bos && ids[1] == *bos) ids.erase(ids.begin());
  return ids;
}

std::vector<ModelJudgement> ModelJudge::judge(std::span<const JudgePair> pairs) const {
  std::vector<ModelJudgement> out(pairs.size());
  if (pairs.empty()) return out;
  std::vector<std::vector<engine::TokenId>> prompts;
  prompts.reserve(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    prompts.push_back(judge_prompt_ids(pairs[i]));
    out[i].prompt_tokens = static_cast<std::int64_t>(prompts.back().size());
  }
  const engine::Generator generator(*state_->model);
  const std::vector<engine::Generation> generations =
      generator.generate(prompts, {.max_new_tokens = options_.max_new_tokens,
                                   .batch_size = options_.batch_size,
                                   .stop_tokens = state_->stop_tokens,
                                   .pad_id = state_->pad_id});
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const engine::Generation& generation = generations[i];
    const std::string raw = state_->tokenizer->decode(generation.tokens);
    out[i].answer = parse_judge_answer(options_.format, raw);
    out[i].output_tokens = static_cast<std::int64_t>(generation.tokens.size());
    out[i].stopped = generation.stopped;
  }
  return out;
}

}  // namespace kvsafe::eval
