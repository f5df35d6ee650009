// refusal / over_refusal / ifeval shards: render each prompt with the model's chat template,
// generate with the cell's KV quantizer (a speculative cell: with its draft model, the quantizer
// on the side it names), judge the answer, and fill one db::GenerationRow per prompt, with the
// first-token divergence from full precision and the quantizer's KV MSE; ifeval answers are
// also scored per instruction (shard_ifeval.cpp).

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/sha256.h"
#include "engine/generator.h"
#include "engine/quantized_kv_path.h"
#include "engine/speculative_generator.h"
#include "eval/logit_divergence.h"
#include "text/chat_template.h"
#include "text/python_text.h"
#include "worker/cell_prompts.h"
#include "worker/generation_options.h"
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

engine::ChatOptions chat_options_for(const orchestrator::Cell& cell) {
  engine::ChatOptions options;
  options.merge_system_into_first_user = true;  // only used by templates without a system role
  if (cell.generation && cell.generation->paper_bos) options.bos = engine::BosRule::kPaper;
  // The generation's system prompt (the experiment's variable, e.g. a sweep) wins; else the
  // model's own (models[].system_prompt: its default, written out).
  std::optional<std::string> system_prompt =
      cell.generation ? cell.generation->system_prompt : std::optional<std::string>();
  if (!system_prompt) system_prompt = cell.model.system_prompt;
  if (system_prompt) {
    if (system_prompt->empty()) {
      options.system_mode = engine::SystemPromptMode::kNone;
    } else {
      options.system_mode = engine::SystemPromptMode::kCustom;
      options.system_prompt = *system_prompt;
    }
  }
  return options;
}

std::int64_t samples_per_prompt(const orchestrator::Cell& cell) {
  return cell.generation ? std::max<std::int64_t>(1, cell.generation->samples) : 1;
}

eval::Benchmark shard_prompts(const orchestrator::Cell& cell, std::int64_t end, const ShardExecutorOptions& options) {
  eval::Benchmark benchmark = load_cell_prompts(cell.benchmark, options.data_dir);
  const auto available = static_cast<std::int64_t>(benchmark.prompts.size()) * samples_per_prompt(cell);
  KVSAFE_CHECK(end <= available, "benchmark ", cell.benchmark.name, " has ", available,
               " prompts after limit/sample in ", options.data_dir.string(), ", the shard needs prompts up to ", end,
               " (the grid counted ", cell.n_prompts, ")");
  return benchmark;
}

namespace {

// Sampling seeds: the generator seeds prompt i of a call with (seed, i). Calls here are one
// batch each, so the batch's first cell index is mixed into the seed: a prompt's draws then
// depend on its cell index only, never on the shard it landed in.
std::uint64_t batch_seed(std::int64_t seed, std::int64_t batch_begin) {
  return static_cast<std::uint64_t>(seed) ^ (static_cast<std::uint64_t>(batch_begin) * 0x9E3779B97F4A7C15ULL);
}

// The quantizer's per-call KV MSE (engine/kv_path.h: one value per layer, side and forward
// call, NaN for layers the spec leaves exact), summed per side over one batch's calls.
struct KvMseSums {
  // Index 0 = keys, 1 = values.
  double sum[2] = {0, 0};          // of the calls' MSE
  std::int64_t calls[2] = {0, 0};  // calls that reported one
  void add(engine::KvSide side, double mse) {
    if (std::isnan(mse)) return;
    const auto s = static_cast<std::size_t>(side == engine::KvSide::kValue);
    sum[s] += mse;
    ++calls[s];
  }
  std::optional<double> mean(engine::KvSide side) const {
    const auto s = static_cast<std::size_t>(side == engine::KvSide::kValue);
    if (calls[s] == 0) return std::nullopt;
    return sum[s] / static_cast<double>(calls[s]);
  }
};

// A store that hands every append's MSE to a KvMseSums and otherwise is the inner store.
class MseRecordingStore final : public engine::KvLayerStore {
 public:
  MseRecordingStore(std::unique_ptr<engine::KvLayerStore> inner, KvMseSums& sums)
      : inner_(std::move(inner)), sums_(sums) {}
  engine::KvRead append(const at::Tensor& keys, const at::Tensor& values, const at::Tensor& valid) override {
    engine::KvRead read = inner_->append(keys, values, valid);
    sums_.add(engine::KvSide::kKey, read.key_mse);
    sums_.add(engine::KvSide::kValue, read.value_mse);
    return read;
  }
  std::int64_t tokens() const override { return inner_->tokens(); }
  // Speculative decoding's rollback (engine/kv_path.h: a wrapping store must forward it; the
  // shape's truncatable flag reaches the inner store through MseRecordingPath::make_store).
  bool truncate(std::int64_t tokens) override { return inner_->truncate(tokens); }
  std::int64_t memory_bytes() const override { return inner_->memory_bytes(); }

 private:
  std::unique_ptr<engine::KvLayerStore> inner_;
  KvMseSums& sums_;
};

// The cell's KV path, unchanged, with its per-call MSE values collected into `sums`: the
// Generator does not expose engine::ForwardOptions::kv_log, and this sees the same values
// (transformer_blocks logs exactly what project() and KvLayerStore::append() report).
class MseRecordingPath final : public engine::KvPath {
 public:
  MseRecordingPath(engine::KvPath& inner, KvMseSums& sums) : inner_(inner), sums_(sums) {}
  engine::KvPlacement placement() const override { return inner_.placement(); }
  engine::KvPrefillAttention prefill_attention() const override { return inner_.prefill_attention(); }
  bool keys_before_rope() const override { return inner_.keys_before_rope(); }
  at::Tensor project(const at::Tensor& x, const engine::KvProjectionCall& call, double* mse) override {
    double m = std::numeric_limits<double>::quiet_NaN();
    at::Tensor out = inner_.project(x, call, &m);
    if (mse != nullptr) *mse = m;
    sums_.add(call.side, m);
    return out;
  }
  std::unique_ptr<engine::KvLayerStore> make_store(const engine::KvStoreShape& shape) override {
    // The shape as given: KvStoreShape::truncatable included.
    return std::make_unique<MseRecordingStore>(inner_.make_store(shape), sums_);
  }

 private:
  engine::KvPath& inner_;
  KvMseSums& sums_;
};

// The token a generation chose at its first step: its first kept token, or the stop token
// when the first step stopped it (a stop token is never kept); none when nothing was generated.
std::optional<std::int64_t> first_token_of(const engine::Generation& g) {
  if (!g.tokens.empty()) return g.tokens.front();
  if (g.stopped) return g.stop_token;
  return std::nullopt;
}

// The key of a batch in LoadedModel::reference_logits: its prompts' token ids, lengths included.
// NOTE: the padding settings are not part of the key: at full precision no real token sees a
// padding slot, so the reference logits do not depend on them.
std::string batch_key(const std::vector<std::vector<engine::TokenId>>& batch) {
  Sha256 hash;
  for (const auto& prompt : batch) {
    const auto length = static_cast<std::int64_t>(prompt.size());
    hash.update(&length, sizeof length);
    hash.update(prompt.data(), prompt.size() * sizeof(engine::TokenId));
  }
  return hash.finish_hex();
}

// NOTE: 64M floats (256 MB): ~1,300 prompts of SmolLM2's 49k vocabulary, ~500 of Llama-3's
// 128k. Past it the cache starts over: a grid's cells of one benchmark run close together.
constexpr std::int64_t kReferenceCacheFloats = std::int64_t{64} << 20;

// A generation's judge_json: the verdict's detail (eval/refusal_judge.h), the judge's label,
// a model judge's raw answer (the generations table has no column for it), whether the prompt
// was harmful, whether the answer ended on a stop token, "unparsed_counted_as" when the
// judge reached no verdict and the grid counts that as not refused, and a speculative cell's
// "speculative" statistics (null: a plain cell, left out).
std::string generation_judge_json(const eval::RefusalJudge& judge, const eval::RefusalVerdict& verdict, bool harmful,
                                  bool stopped, orchestrator::UnparsedVerdict unparsed,
                                  const nlohmann::json& speculative) {
  nlohmann::json json = verdict.detail;
  // The unparsed rule changes verdicts: a run under it is another judge (its label says so).
  json["judge"] =
      judge.label() + (judge.kind() == eval::JudgeKind::kModel && unparsed == orchestrator::UnparsedVerdict::kNotRefused
                           ? "+unparsed-not-refused"
                           : "");
  // An output the judge could not read, counted as not refused by the grid's rule: said here, so
  // the summary can count them and a re-judge can tell them from real verdicts.
  if (!verdict.refused && unparsed == orchestrator::UnparsedVerdict::kNotRefused) {
    json["unparsed_counted_as"] = "not_refused";
  }
  if (judge.kind() == eval::JudgeKind::kModel) json["raw"] = verdict.raw_output;
  json["harmful"] = harmful;
  json["stopped"] = stopped;
  // A speculative cell's rounds for this answer (the generations table has no column for them).
  if (!speculative.is_null()) json["speculative"] = speculative;
  // Replace, not throw: a judge model's output may hold invalid UTF-8 (a cut multi-byte token).
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Each prompt of [begin, end) rendered with the cell's chat template: its row with the prompt's
// identity filled, and its token ids.
void render_prompts(const LoadedModel& loaded, const orchestrator::Cell& cell, const eval::Benchmark& benchmark,
                    std::int64_t begin, std::int64_t end, db::ShardResult& result,
                    std::vector<std::vector<engine::TokenId>>& ids) {
  const engine::ChatTemplate chat = chat_template_for(cell.model);
  const engine::ChatOptions chat_opts = chat_options_for(cell);
  const std::int64_t samples = samples_per_prompt(cell);
  for (std::int64_t i = begin; i < end; ++i) {
    const eval::Prompt& prompt = benchmark.prompts[static_cast<std::size_t>(i / samples)];
    // The paper strips its prompts (two benchmark rows end in a space); the stored prompt stays
    // as the benchmark has it, the rendered hash says what the model saw.
    const bool strip = cell.generation && cell.generation->strip_prompts;
    // A conversation's earlier turns come first: the cache holds them when the last one arrives.
    std::vector<engine::ChatMessage> turns;
    for (const eval::ConversationTurn& turn : prompt.prior_turns) {
      turns.push_back({.role = turn.role == "assistant" ? engine::ChatRole::kAssistant : engine::ChatRole::kUser,
                       .content = turn.content});
    }
    turns.push_back(
        {.role = engine::ChatRole::kUser, .content = strip ? text::python_strip(prompt.text) : prompt.text});
    engine::TokenizedChat rendered = chat.tokenize(*loaded.tokenizer, turns, chat_opts);
    db::GenerationRow row;
    row.prompt_index = i;
    row.prompt_id = prompt.prompt_id;
    row.prompt_sha256 = prompt.text_sha256;
    row.rendered_sha256 = sha256_hex(rendered.rendered.text);
    row.prompt_tokens = static_cast<std::int64_t>(rendered.ids.size());
    result.generations.push_back(std::move(row));
    ids.push_back(std::move(rendered.ids));
  }
}

// The full-precision reference of a quantized cell: the same left-padded batch, prefilled once
// with no KV path (the Generator with one new token, so it is exactly the baseline cell's
// prefill); its first-step logits are kept per prompt of the batch in
// LoadedModel::reference_logits, so every quantized cell of these prompts at this batch size
// shares one prefill.
class ReferencePrefill {
 public:
  ReferencePrefill(LoadedModel& loaded, const engine::Generator& generator, const engine::GenerationOptions& gen)
      : loaded_(loaded), generator_(generator), gen_(gen) {
    gen_.max_new_tokens = 1;
    gen_.temperature = 0;  // only the logits are used; greedy skips a host copy
    gen_.kv_path = nullptr;
    gen_.on_first_logits = [this](std::size_t prompt, const float* logits, std::int64_t vocab) {
      filling_->at(prompt).assign(logits, logits + vocab);
    };
  }

  // The batch's reference logits, prefilled now unless a cell before this one did.
  const std::vector<std::vector<float>>& logits(const std::vector<std::vector<engine::TokenId>>& batch) {
    const std::string key = batch_key(batch);
    auto cached = loaded_.reference_logits.find(key);
    if (cached != loaded_.reference_logits.end()) return cached->second;
    const std::int64_t floats = static_cast<std::int64_t>(batch.size()) * loaded_.model->config().vocab_size;
    if (loaded_.reference_floats + floats > kReferenceCacheFloats) {
      loaded_.reference_logits.clear();
      loaded_.reference_floats = 0;
    }
    cached = loaded_.reference_logits.emplace(key, std::vector<std::vector<float>>(batch.size())).first;
    filling_ = &cached->second;
    (void)generator_.generate(batch, gen_);
    loaded_.reference_floats += floats;
    return cached->second;
  }

 private:
  LoadedModel& loaded_;
  const engine::Generator& generator_;
  engine::GenerationOptions gen_;
  std::vector<std::vector<float>>* filling_ = nullptr;
};

}  // namespace

db::ShardResult run_generation_shard(LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                     std::int64_t end, const ShardExecutorOptions& options,
                                     const eval::RefusalJudge& judge, const ShardProgressCallback& on_progress,
                                     const engine::Model* draft) {
  const orchestrator::GenerationSettings& settings = *cell.generation;
  const eval::Benchmark benchmark = shard_prompts(cell, end, options);
  const bool ifeval = cell.task() == orchestrator::Task::kIfeval;
  const std::int64_t samples = samples_per_prompt(cell);  // cell index i is prompt i / samples

  const engine::Tokenizer& tokenizer = *loaded.tokenizer;
  db::ShardResult result;
  result.shard = {.cell_id = cell.id, .begin = begin, .end = end};
  std::vector<std::vector<engine::TokenId>> ids;
  render_prompts(loaded, cell, benchmark, begin, end, result, ids);

  // Speculative decoding (generation.speculative): the cell's KV spec applies to the side(s)
  // `quantize` names, each through its own path (a path's stores belong to one model's cache).
  const std::optional<orchestrator::SpeculativeSettings>& speculative = settings.speculative;
  KVSAFE_CHECK(!speculative || draft != nullptr, "a speculative cell needs its draft model loaded");
  const bool quantize_target = !speculative || speculative->quantize != orchestrator::SpeculativeQuantize::kDraft;
  const bool quantize_draft = speculative && speculative->quantize != orchestrator::SpeculativeQuantize::kTarget;
  // The target's path: what the first-token KL and the KV MSE below measure. nullptr for "none",
  // and for a speculative cell that quantizes only the draft (its answers are the target's at
  // full precision). NOTE: the draft's MSE is not recorded: it would be this quantizer's error on
  // the draft's keys and values (for a self-draft, the target's own weights, over the draft's
  // one-token calls), which changes only which proposals are accepted, never an answer.
  const std::unique_ptr<engine::KvPath> kv_path = quantize_target ? engine::make_kv_path(cell.kv) : nullptr;
  const std::unique_ptr<engine::KvPath> draft_kv_path = quantize_draft ? engine::make_kv_path(cell.kv) : nullptr;
  // The current batch's per-call KV MSE, filled while it generates.
  KvMseSums mse;
  std::optional<MseRecordingPath> recording;
  if (kv_path) recording.emplace(*kv_path, mse);
  const engine::Generator generator(*loaded.model);
  engine::GenerationOptions gen = generation_options(settings, tokenizer, loaded.generation_config);
  gen.kv_path = recording ? &*recording : nullptr;
  ReferencePrefill reference(loaded, generator, gen);
  const std::vector<std::vector<float>>* reference_logits = nullptr;  // the current batch's
  std::vector<std::optional<double>> kl;                              // per prompt of the batch
  std::vector<std::optional<std::int64_t>> reference_token;           // per prompt of the batch
  if (kv_path) {
    gen.on_first_logits = [&](std::size_t prompt, const float* logits, std::int64_t vocab) {
      const std::vector<float>& ref = reference_logits->at(prompt);
      KVSAFE_CHECK(static_cast<std::int64_t>(ref.size()) == vocab, "reference logits of prompt ", prompt, " have ",
                   ref.size(), " entries, the quantized run ", vocab);
      kl.at(prompt) = eval::kl_divergence_logits(ref.data(), logits, vocab);
      reference_token.at(prompt) = eval::argmax_logits(ref.data(), vocab);
    };
  }
  std::optional<engine::SpeculativeGenerator> speculative_generator;
  engine::SpeculativeOptions speculative_options;
  if (speculative) {
    // NOTE: the speculative generator applies no repetition penalty; the grid refuses an explicit
    // one, the model folder's generation_config.json (generation_config: model) is only read here.
    KVSAFE_CHECK(gen.repetition_penalty == 1.0, "speculative decoding applies no repetition penalty, and ",
                 cell.model.name, "'s generation_config.json sets ", gen.repetition_penalty,
                 " (generation_config: model); use generation_config: ignore with speculative");
    speculative_generator.emplace(*loaded.model, *draft);
    // Batch 1 inside, without padding: the batch size only groups prompts for judging here. The
    // first-token KL's reference stays the plain cell's batched full-precision prefill.
    speculative_options = {.max_new_tokens = gen.max_new_tokens,
                           .draft_tokens = speculative->draft_tokens,
                           .temperature = settings.temperature,
                           .stop_tokens = gen.stop_tokens,
                           .pad_id = gen.pad_id,
                           .target_kv_path = gen.kv_path,
                           .draft_kv_path = draft_kv_path.get(),
                           .on_first_logits = gen.on_first_logits};
  }
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
    kl.assign(batch.size(), std::nullopt);
    reference_token.assign(batch.size(), std::nullopt);
    mse = KvMseSums{};
    if (kv_path && settings.max_new_tokens > 0) reference_logits = &reference.logits(batch);
    std::vector<engine::Generation> out;
    std::vector<nlohmann::json> rounds(batch.size());  // a speculative cell's statistics per prompt
    if (speculative_generator) {
      engine::SpeculativeOutput generated = speculative_generator->generate(batch, speculative_options);
      out = std::move(generated.generations);
      for (std::size_t b = 0; b < batch.size(); ++b) {
        const engine::SpeculativeStats& stats = generated.stats.at(b);
        rounds[b] = {{"draft_tokens", speculative->draft_tokens},
                     {"rounds", stats.rounds},
                     {"proposed", stats.proposed},
                     {"accepted", stats.accepted}};
      }
    } else {
      out = generator.generate(batch, gen);
    }
    std::vector<eval::JudgePair> pairs;
    // The judge reads the prompts as the model saw them; JudgePair only views its text.
    std::vector<std::string> judged_prompts;
    judged_prompts.reserve(static_cast<std::size_t>(last - first));
    for (std::int64_t i = first; i < last; ++i) {
      const auto b = static_cast<std::size_t>(i - first);
      const engine::Generation& g = out[b];
      db::GenerationRow& row = result.generations[static_cast<std::size_t>(i - begin)];
      row.output_text = tokenizer.decode(g.tokens, decode);
      if (cell.generation->clean_answers) {
        // As the paper's decode(..., clean_up_tokenization_spaces=True).strip(): stored and judged so.
        row.output_text = text::python_strip(text::clean_up_tokenization(row.output_text));
      }
      row.output_tokens = static_cast<std::int64_t>(g.tokens.size());
      row.first_token_id = first_token_of(g);
      row.reference_first_token_id = reference_token[b];
      row.first_token_kl = kl[b];
      row.kv_mse_key = mse.mean(engine::KvSide::kKey);
      row.kv_mse_value = mse.mean(engine::KvSide::kValue);
      const std::string& prompt_text = benchmark.prompts[static_cast<std::size_t>(i / samples)].text;
      judged_prompts.push_back(settings.strip_prompts ? text::python_strip(prompt_text) : prompt_text);
      pairs.push_back({.prompt = judged_prompts.back(), .response = row.output_text});
      progress.tokens_generated += row.output_tokens;
    }
    const std::vector<eval::RefusalVerdict> verdicts = judge.judge(pairs);
    // The batch's wall time (reference prefill, generation and judging) shared by its prompts.
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (std::int64_t i = first; i < last; ++i) {
      const eval::RefusalVerdict& verdict = verdicts[static_cast<std::size_t>(i - first)];
      db::GenerationRow& row = result.generations[static_cast<std::size_t>(i - begin)];
      row.refused = verdict.refused;
      row.seconds = seconds / static_cast<double>(last - first);
      row.judge_json =
          generation_judge_json(judge, verdict, benchmark.prompts[static_cast<std::size_t>(i / samples)].harmful,
                                out[static_cast<std::size_t>(i - first)].stopped, options.judge.unparsed,
                                rounds[static_cast<std::size_t>(i - first)]);
      if (!verdict.refused && options.judge.unparsed == orchestrator::UnparsedVerdict::kNotRefused) {
        row.refused = false;  // the paper's rule; judge_json keeps that it did not parse
      }
      if (ifeval) {
        for (db::IfevalVerdictRow& scored :
             ifeval_verdict_rows(benchmark.prompts[static_cast<std::size_t>(i / samples)], i, row.output_text)) {
          result.ifeval_verdicts.push_back(std::move(scored));
        }
      }
    }
    progress.prompts_done += last - first;
    if (on_progress) on_progress(progress);
    first = last;
  }
  return result;
}

}  // namespace kvsafe::worker::detail
