// refusal / over_refusal shards: render each prompt with the model's chat template, generate
// with the cell's KV quantizer, judge the answer, and fill one db::GenerationRow per prompt.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/sha256.h"
#include "engine/chat_template.h"
#include "engine/generator.h"
#include "engine/quantized_kv_path.h"
#include "worker/cell_prompts.h"
#include "worker/shard_internal.h"

namespace kvsafe::worker::detail {

engine::ChatTemplate chat_template_for(const orchestrator::ModelSpec& model) {
  engine::ChatTemplateLoadOptions options;
  if (model.chat_template_path) {
    options.template_file = *model.chat_template_path;
  } else if (model.chat_template) {
    options.name = *model.chat_template;
  }
  return engine::load_chat_template(model.path, options);
}

namespace {

// GenerationSettings::system_prompt: absent = the template's default, "" = none, text = that text.
engine::ChatOptions chat_options(const orchestrator::GenerationSettings& settings) {
  engine::ChatOptions options;
  options.merge_system_into_first_user = true;  // only used by templates without a system role
  if (settings.system_prompt) {
    if (settings.system_prompt->empty()) {
      options.system_mode = engine::SystemPromptMode::kNone;
    } else {
      options.system_mode = engine::SystemPromptMode::kCustom;
      options.system_prompt = *settings.system_prompt;
    }
  }
  return options;
}

engine::TokenId pad_id_of(const engine::Tokenizer& tokenizer) {
  // transformers' convention for models without a pad token (the paper's generation code):
  // pad = eos. Padding slots are masked; a stopped sequence is fed this token.
  if (auto eos = tokenizer.eos_id()) return *eos;
  return 0;
}

// Sampling seeds: the generator seeds prompt i of a call with (seed, i). Calls here are one
// batch each, so the batch's first cell index is mixed into the seed: a prompt's draws then
// depend on its cell index only, never on the shard it landed in.
std::uint64_t batch_seed(std::int64_t seed, std::int64_t batch_begin) {
  return static_cast<std::uint64_t>(seed) ^ (static_cast<std::uint64_t>(batch_begin) * 0x9E3779B97F4A7C15ULL);
}

}  // namespace

db::ShardResult run_generation_shard(const LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                     std::int64_t end, const ShardExecutorOptions& options, const AnswerJudge& judge,
                                     const ShardProgressCallback& on_progress) {
  const orchestrator::GenerationSettings& settings = *cell.generation;
  const eval::Benchmark benchmark = load_cell_prompts(cell.benchmark, options.data_dir);
  const auto available = static_cast<std::int64_t>(benchmark.prompts.size());
  KVSAFE_CHECK(end <= available, "benchmark ", cell.benchmark.name, " has ", available,
               " prompts after limit/sample in ", options.data_dir.string(), ", the shard needs prompts up to ", end,
               " (the grid counted ", cell.n_prompts, ")");

  const engine::Tokenizer& tokenizer = *loaded.tokenizer;
  const engine::ChatTemplate chat = chat_template_for(cell.model);
  const engine::ChatOptions chat_opts = chat_options(settings);

  db::ShardResult result;
  result.shard = {.cell_id = cell.id, .begin = begin, .end = end};
  std::vector<std::vector<engine::TokenId>> ids;
  for (std::int64_t i = begin; i < end; ++i) {
    const eval::Prompt& prompt = benchmark.prompts[static_cast<std::size_t>(i)];
    const std::vector<engine::ChatMessage> turns{{.role = engine::ChatRole::kUser, .content = prompt.text}};
    engine::TokenizedChat rendered = chat.tokenize(tokenizer, turns, chat_opts);
    db::GenerationRow row;
    row.prompt_index = i;
    row.prompt_id = prompt.prompt_id;
    row.prompt_sha256 = prompt.text_sha256;
    row.rendered_sha256 = sha256_hex(rendered.rendered.text);
    row.prompt_tokens = static_cast<std::int64_t>(rendered.ids.size());
    result.generations.push_back(std::move(row));
    ids.push_back(std::move(rendered.ids));
  }

  const std::unique_ptr<engine::KvPath> kv_path = engine::make_kv_path(cell.kv);
  const engine::Generator generator(*loaded.model);
  engine::GenerationOptions gen{.max_new_tokens = settings.max_new_tokens,
                                .batch_size = settings.batch_size,
                                .temperature = settings.temperature,
                                .top_p = settings.top_p,
                                .seed = 0,
                                .stop_tokens = engine::default_stop_tokens(tokenizer),
                                .pad_id = pad_id_of(tokenizer),
                                .kv_path = kv_path.get()};
  const engine::DecodeOptions decode{.skip_special = true};
  const std::int64_t bs = std::max<std::int64_t>(1, settings.batch_size);

  ShardProgress progress;
  // Batches follow the cell's index grid, so a prompt shares its batch with the same
  // neighbours whichever shard it is in (batch-wide quantization statistics depend on them).
  for (std::int64_t first = begin; first < end;) {
    const std::int64_t last = std::min(end, (first / bs + 1) * bs);
    const std::vector<std::vector<engine::TokenId>> batch(ids.begin() + (first - begin), ids.begin() + (last - begin));
    gen.seed = batch_seed(settings.seed, first);
    const auto started = std::chrono::steady_clock::now();
    const std::vector<engine::Generation> out = generator.generate(batch, gen);
    std::vector<std::string_view> prompt_texts, answers;
    for (std::int64_t i = first; i < last; ++i) {
      const engine::Generation& g = out[static_cast<std::size_t>(i - first)];
      db::GenerationRow& row = result.generations[static_cast<std::size_t>(i - begin)];
      row.output_text = tokenizer.decode(g.tokens, decode);
      row.output_tokens = static_cast<std::int64_t>(g.tokens.size());
      prompt_texts.push_back(benchmark.prompts[static_cast<std::size_t>(i)].text);
      answers.push_back(row.output_text);
      progress.tokens_generated += row.output_tokens;
    }
    const std::vector<AnswerVerdict> verdicts = judge.judge(prompt_texts, answers);
    // The batch's wall time (generation and judging) shared by its prompts.
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (std::int64_t i = first; i < last; ++i) {
      const AnswerVerdict& verdict = verdicts[static_cast<std::size_t>(i - first)];
      db::GenerationRow& row = result.generations[static_cast<std::size_t>(i - begin)];
      row.refused = verdict.refused;
      row.seconds = seconds / static_cast<double>(last - first);
      nlohmann::json details = nlohmann::json::parse(verdict.judge_json);
      details["harmful"] = benchmark.prompts[static_cast<std::size_t>(i)].harmful;
      details["stopped"] = out[static_cast<std::size_t>(i - first)].stopped;
      row.judge_json = details.dump();
    }
    progress.prompts_done += last - first;
    if (on_progress) on_progress(progress);
    first = last;
  }
  return result;
}

}  // namespace kvsafe::worker::detail
