#include "worker/shard_executor.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <utility>

#include "common/error.h"
#include "eval/refusal_direction_file.h"
#include "worker/judge_options.h"
#include "worker/model_provenance.h"
#include "worker/shard_internal.h"

namespace kvsafe::worker {

namespace {

std::string dtype_name(orchestrator::DType dtype) {
  return std::string(orchestrator::to_string(dtype));
}

// "cell 1a2b3c4d5e6f7a8b (smollm2-135m, int4-ptok-asym, custom) shard [0, 8)"
std::string describe(const orchestrator::Cell& cell, std::int64_t begin, std::int64_t end) {
  return "cell " + cell.short_id() + " (" + cell.model.name + ", " + cell.kv_label + ", " + cell.benchmark.name +
         ") shard [" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

// The grid's steer entry as the engine adds it: alpha x the file's direction at the layer.
std::optional<engine::ResidualSteering> steering_for(const orchestrator::ModelSpec& model) {
  if (!model.steer) return std::nullopt;
  const orchestrator::SteerSpec& steer = *model.steer;
  const eval::RefusalDirectionFile file = eval::read_refusal_direction_file(steer.direction_path);
  KVSAFE_CHECK(steer.layer < static_cast<std::int64_t>(file.directions.size()), steer.direction_path.string(),
               ": has no layer ", steer.layer);
  engine::ResidualSteering steering{.layer = steer.layer};
  for (const double v : file.directions[static_cast<std::size_t>(steer.layer)]) {
    steering.vector.push_back(static_cast<float>(steer.alpha * v));
  }
  return steering;
}

// The engine's load options for a grid's model entry.
engine::ModelLoadOptions load_options(const orchestrator::ModelSpec& model, const ShardExecutorOptions& options) {
  engine::ModelLoadOptions load;
  load.device = options.device;
  load.dtype = dtype_name(model.dtype);
  load.threads = options.threads;
  load.steering = steering_for(model);
  return load;
}

// NOTE: the draft's token ids are read as the target's (engine/speculative_generator.h), so the
// two must share the vocabulary id by id, not only its size: a draft whose token 5 is another
// text would propose nonsense that the target merely rejects, and the run would look valid.
void check_same_vocabulary(const detail::LoadedModel& target, const detail::LoadedModel& draft) {
  const auto describe_model = [](const detail::LoadedModel& m) { return "`" + m.name + "` (" + m.path.string() + ")"; };
  const std::int64_t target_rows = target.model->config().vocab_size, draft_rows = draft.model->config().vocab_size;
  KVSAFE_CHECK(target_rows == draft_rows && target.tokenizer->vocab_size() == draft.tokenizer->vocab_size(),
               "speculative decoding: the draft model ", describe_model(draft), " has ", draft_rows, " logits and ",
               draft.tokenizer->vocab_size(), " tokens, the target model ", describe_model(target), " ", target_rows,
               " and ", target.tokenizer->vocab_size(), "; a draft needs the target's vocabulary");
  for (std::size_t id = 0; id < target.tokenizer->vocab_size(); ++id) {
    const auto token = static_cast<engine::TokenId>(id);
    KVSAFE_CHECK(target.tokenizer->token_text(token) == draft.tokenizer->token_text(token),
                 "speculative decoding: the draft model ", describe_model(draft), " and the target model ",
                 describe_model(target), " spell token ", id, " differently; a draft needs the target's vocabulary");
  }
}

}  // namespace

struct ShardExecutor::State {
  std::optional<detail::LoadedModel> loaded{};
  // A speculative cell's draft (generation.speculative.draft), kept beside the target while the
  // next cells draft with it; one at a time. Never the target itself: a self-drafting cell uses
  // the target's engine::Model.
  std::optional<detail::LoadedModel> draft{};
  std::string vocabulary_checked{};              // "<target path>\n<draft path>" of the pair checked last
  std::unique_ptr<eval::RefusalJudge> judge{};   // made at the first generation shard, kept
  bool judge_spaceless = false;                  // its keyword spaceless fallback (depends on the model)
  std::vector<db::ModelRecord> models_loaded{};  // provenance of the loads since last taken
  std::string empty{};
};

ShardExecutor::ShardExecutor(ShardExecutorOptions options)
    : options_(std::move(options)), state_(std::make_unique<State>()) {}

ShardExecutor::~ShardExecutor() = default;

const std::string& ShardExecutor::loaded_model() const {
  return state_->loaded ? state_->loaded->name : state_->empty;
}

std::vector<db::ModelRecord> ShardExecutor::take_models_loaded() {
  return std::exchange(state_->models_loaded, {});
}

db::ShardResult ShardExecutor::run(const orchestrator::Cell& cell, std::int64_t begin, std::int64_t end,
                                   const ShardProgressCallback& on_progress) {
  const std::string where = describe(cell, begin, end);
  try {
    KVSAFE_CHECK(begin >= 0 && begin < end && end <= cell.n_prompts, "the range is not inside the cell's ",
                 cell.n_prompts, " prompts");
    const orchestrator::Task task = cell.task();
    const bool generates = task == orchestrator::Task::kRefusal || task == orchestrator::Task::kOverRefusal ||
                           task == orchestrator::Task::kIfeval;
    KVSAFE_CHECK(generates || task == orchestrator::Task::kPerplexity || task == orchestrator::Task::kKeyMagnitudes ||
                     task == orchestrator::Task::kRefusalDirection,
                 "task ", orchestrator::to_string(task), " is not run by workers yet");
    if (generates) {
      KVSAFE_CHECK(cell.generation.has_value(), "a ", orchestrator::to_string(task), " cell needs generation settings");
      const eval::RefusalJudgeOptions wanted =
          refusal_judge_options(options_.judge, cell.model, options_.device, options_.threads);
      // NOTE: a model judge is kept (a second model's load); a keyword judge is cheap and its
      // spaceless fallback may be for some models only (the paper: Yi's).
      const bool keyword_changed =
          wanted.kind == eval::JudgeKind::kKeyword && state_->judge_spaceless != wanted.keyword.spaceless_fallback;
      if (!state_->judge || keyword_changed) {
        state_->judge = std::make_unique<eval::RefusalJudge>(wanted);
        state_->judge_spaceless = wanted.keyword.spaceless_fallback;
      }
    }

    if (!state_->loaded || state_->loaded->name != cell.model.name || state_->loaded->path != cell.model.path) {
      state_->loaded.reset();  // one model at a time: release before loading the next
      // A draft that is the next target would be held twice: it is loaded again as the target.
      if (state_->draft && state_->draft->name == cell.model.name) state_->draft.reset();
      const auto started = std::chrono::steady_clock::now();
      detail::LoadedModel loaded;
      loaded.name = cell.model.name;
      loaded.path = cell.model.path;
      loaded.model = engine::Model::load(cell.model.path, load_options(cell.model, options_));
      loaded.tokenizer = engine::Tokenizer::load(cell.model.path);
      loaded.generation_config = engine::read_generation_config(cell.model.path);
      db::ModelRecord provenance = model_provenance(cell.model, *loaded.model);
      provenance.generation_config =
          loaded.generation_config.source.empty() ? std::string() : engine::describe(loaded.generation_config);
      state_->models_loaded.push_back(std::move(provenance));
      state_->loaded = std::move(loaded);
      spdlog::info("worker: loaded model {} from {} in {:.1f} s", cell.model.name, cell.model.path.string(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }

    if (generates) {
      return detail::run_generation_shard(*state_->loaded, cell, begin, end, options_, *state_->judge, on_progress,
                                          draft_for(cell));
    }
    if (task == orchestrator::Task::kKeyMagnitudes) {
      return detail::run_key_magnitude_shard(*state_->loaded, cell, begin, end, options_, on_progress);
    }
    if (task == orchestrator::Task::kRefusalDirection) {
      return detail::run_refusal_direction_shard(*state_->loaded, cell, begin, end, options_, on_progress);
    }
    return detail::run_perplexity_shard(*state_->loaded, cell, begin, end, options_, on_progress);
  } catch (const InputError& e) {
    throw InputError(where + ": " + e.what());
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  } catch (const std::exception& e) {  // ATen errors, out of memory: still a failed shard, named
    throw Error(where + ": " + e.what());
  }
}

const engine::Model* ShardExecutor::draft_for(const orchestrator::Cell& cell) {
  if (!cell.generation || !cell.generation->speculative) return nullptr;
  const orchestrator::ModelSpec& spec = cell.generation->speculative->draft;
  if (spec.name == cell.model.name) return state_->loaded->model.get();  // self-drafting: the same weights
  if (!state_->draft || state_->draft->name != spec.name || state_->draft->path != spec.path) {
    state_->draft.reset();  // one draft at a time
    const auto started = std::chrono::steady_clock::now();
    detail::LoadedModel draft;
    draft.name = spec.name;
    draft.path = spec.path;
    draft.model = engine::Model::load(spec.path, load_options(spec, options_));
    draft.tokenizer = engine::Tokenizer::load(spec.path);
    state_->models_loaded.push_back(model_provenance(spec, *draft.model));  // the run's provenance lists drafts too
    state_->draft = std::move(draft);
    spdlog::info("worker: loaded draft model {} from {} in {:.1f} s", spec.name, spec.path.string(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  const std::string pair = state_->loaded->path.string() + "\n" + state_->draft->path.string();
  if (state_->vocabulary_checked != pair) {
    check_same_vocabulary(*state_->loaded, *state_->draft);
    state_->vocabulary_checked = pair;
  }
  return state_->draft->model.get();
}

}  // namespace kvsafe::worker
