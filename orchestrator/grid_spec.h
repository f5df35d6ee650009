#pragma once
// The typed grid: what a grid YAML file says once parsed and validated
// (docs/grid.md documents every key). Static configuration only; the per-run pieces
// (cells, shards) come from grid_expansion.h and shards.h.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eval/benchmark_table.h"
#include "eval/judge_spec.h"
#include "orchestrator/grid_diagnostics.h"
#include "orchestrator/kv_spec.h"

namespace kvsafe::orchestrator {

// The benchmark table and the judges' kinds and formats are eval/'s (one home for planning
// and running, eval/benchmark_table.h and eval/judge_spec.h); a grid speaks of them by these
// names.
using eval::benchmark_names;
using eval::BenchmarkInfo;
using eval::find_benchmark;
using eval::find_subset;
using eval::Harmfulness;
using eval::JudgeKind;
using eval::kWikitextPlanTokens;
using eval::ModelJudgeFormat;
using eval::parse_task;
using eval::perplexity_windows;
using eval::SubsetInfo;
using eval::Task;
using eval::to_string;

// Which defaults a grid starts from (`profile:`): kvsafe's own, or the paper's code's conditions
// (issue 20; docs/grid.md, "profile"). Explicit keys override either.
enum class GridProfile { kKvsafe, kPaper };
std::string_view to_string(GridProfile profile);  // "kvsafe", "paper"

enum class DType { kAuto, kFloat32, kBfloat16, kFloat16 };
std::string_view to_string(DType dtype);  // "auto", "float32", "bfloat16", "float16"

// A model made to refuse by activation addition (issue 25's testbed, never an aligned model):
// alpha × the refusal direction at `layer` (a file `kvsafe diagnose DB --export-direction`
// writes) is added to the residual stream after that layer on every forward call.
struct SteerSpec {
  std::string direction_text{};            // `direction_from` as written
  std::filesystem::path direction_path{};  // expanded
  std::string direction_sha256{};          // of the file's bytes: part of the cell identity
  std::string direction_model{};           // provenance, from the file: the model and cell it was measured on
  std::string direction_cell{};
  std::int64_t layer = 0;
  double alpha = 1.0;
  SourceLocation where{};
};

struct ModelSpec {
  std::string name{};                          // unique in the grid; the model's identity in cell ids
  std::string path_text{};                     // `path` as written (before ${VAR} expansion)
  std::filesystem::path path{};                // expanded; relative paths resolved against the grid's folder
  std::optional<std::string> chat_template{};  // as written: a built-in name or a .jinja path
  std::optional<std::filesystem::path> chat_template_path{};  // resolved, when it names a file
  DType dtype = DType::kAuto;
  std::optional<double> params{};    // parameter count as given (`params: 7.24B`)
  std::optional<int> layers{};       // transformer layers, when given
  std::optional<SteerSpec> steer{};  // a steered testbed (SteerSpec); part of the cell identity
  // The user's note that this model refuses rarely ("refuses 0 of 19 custom prompts"): a grid
  // whose every model has one is warned that its flips will be undefined. Not in the identity.
  std::optional<std::string> refusal_note{};
  // The model's own system prompt (`system_prompt` or `system_prompt_file`), its date placeholders
  // already replaced by `system_prompt_date` (orchestrator/model_system_prompt.h); used for this
  // model's generation cells unless generation.system_prompt is set. Part of the cell identity.
  std::optional<std::string> system_prompt{};
  std::optional<std::string> system_prompt_date{};  // YYYY-MM-DD, as pinned
  SourceLocation where{};                           // the model's entry
  SourceLocation path_where{};                      // the `path` value

  // `params`, else inferred from the name (infer_parameter_count), else nullopt.
  std::optional<double> parameter_count() const;
};

// "135M" -> 1.35e8, "7.24B" -> 7.24e9, "46.7e9" -> 4.67e10, "1.2T", "350k"; nullopt if not a count.
std::optional<double> parse_parameter_count(std::string_view text);
// From a model name: "Qwen2.5-7B-Instruct" -> 7e9, "smollm2-135m" -> 1.35e8,
// "Mixtral-8x7B" -> 5.6e10 (experts x size, an upper bound). nullopt when no size is named.
std::optional<double> infer_parameter_count(std::string_view model_name);

struct BenchmarkSpec {
  std::string name{};                    // a name of the benchmark table (eval/benchmark_table.h)
  std::optional<std::string> subset{};   // only this part (xstest: safe|unsafe; custom: refusal|privacy|jailbreak)
  Task task = Task::kRefusal;            // default from the benchmark table
  std::optional<std::int64_t> limit{};   // first N prompts
  std::optional<std::int64_t> sample{};  // then a seeded sample of N of those
  std::int64_t seed = 0;                 // sampling seed; only meaningful with `sample`
  std::int64_t max_length = 2048;        // perplexity window, tokens
  std::int64_t stride = 512;             // perplexity stride, tokens
  // Generation length for this entry's cells, over generation.max_new_tokens (the paper gives
  // IFEval 1024 new tokens and the safety benchmarks 256). Part of the cell id when set.
  std::optional<std::int64_t> max_new_tokens{};
  // conversations (a user's multi-turn JSONL, eval::load_conversations): the file as resolved,
  // the sha256 of its bytes (part of the cell identity: an edited file makes new cells) and its
  // conversation count (what limit and sample count from), read when the grid is parsed.
  std::optional<std::filesystem::path> file{};
  std::string file_sha256{};
  std::int64_t file_prompts = 0;
  SourceLocation where{};
};

// Which KV cache a speculative cell's KV spec quantizes (generation.speculative.quantize).
enum class SpeculativeQuantize {
  kTarget,  // the target's (the cell's model); the draft's stays exact
  kDraft,   // the draft's only: the answer is the target's full-precision greedy one, acceptance changes
  kBoth,    // both, each through its own copy of the quantizer
};
std::string_view to_string(SpeculativeQuantize quantize);  // "target", "draft", "both"

// Greedy speculative decoding (issue 22, engine/speculative_generator.h): a draft model of the
// same vocabulary proposes draft_tokens tokens, the cell's model verifies them in one call.
// Part of the cell identity (the draft's model identity included) only when set.
struct SpeculativeSettings {
  ModelSpec draft{};  // a `models` entry; the cell's own model drafts for itself
  // k: proposals per round, >= 1. 3 by default: a verify call of k + 1 <= 4 tokens runs the
  // decode step's attention loops, so on CPU float32 a self-draft's answers are the plain ones
  // bit for bit; from k = 4 the verify uses BLAS products, equal only to rounding.
  std::int64_t draft_tokens = 3;
  SpeculativeQuantize quantize = SpeculativeQuantize::kTarget;
};

// One point of the generation settings (a grid may sweep temperature and seed).
struct GenerationSettings {
  std::int64_t max_new_tokens = 256;
  std::int64_t batch_size = 4;
  double temperature = 0.0;  // 0 = greedy
  double top_p = 1.0;
  std::int64_t seed = 0;
  // Answers drawn per prompt (issue 22, the temperature experiment): a sampled answer compared
  // with one sample of the baseline says little, so a cell with samples > 1 draws that many per
  // prompt (cell index i = prompt i / samples, each with its own seed) and the summary compares
  // each prompt's majority verdict with the baseline's. 1 for greedy generations (their answers
  // would all be the same). Part of the cell id when > 1.
  std::int64_t samples = 1;
  std::optional<std::string> system_prompt{};
  // The paper's text handling (issue 20 item 5; both on under profile: paper): prompts pass
  // through Python's str.strip() before the chat template, and answers through transformers'
  // clean_up_tokenization_spaces and str.strip() before they are stored and judged.
  bool strip_prompts = false;
  bool clean_answers = false;
  // `bos: paper`: tokenize the rendered prompt as HF's two-step path does, so a template that
  // writes BOS gets a second one from a tokenizer that adds it (issue 20 item 1; text::BosRule).
  // `bos: once` (kvsafe's default): never doubled.
  bool paper_bos = false;
  // generation_config.json of the model's folder (worker/generation_options.h): `model` applies it
  // as transformers' generate() does (profile paper), `ignore` (default) leaves it out.
  bool use_generation_config = false;
  // Padding (issue 20 item 3; both on under profile: paper). `pad_token: tokenizer` pads with the
  // tokenizer's own pad token (Qwen2.5 <|endoftext|>, Gemma <pad>; EOS when it has none, as
  // `tokenizer.pad_token = tokenizer.eos_token` does), `eos` (default) always with EOS; the
  // padding rows enter per-tensor and per-channel statistics, so the token matters.
  // `padding_queries: zero` gives a padding slot's attention a zero output (transformers 4.57's
  // SDPA), `attend_all` (default) lets it attend to every key (engine::PaddingQueries).
  bool tokenizer_pad = false;
  bool zero_padding_queries = false;
  std::optional<double> repetition_penalty{};  // explicit; over the model's file
  std::optional<std::int64_t> top_k{};         // explicit, sampling; over the model's file
  // `speculative: {draft, draft_tokens, quantize}`: greedy speculative decoding (greedy cells only).
  std::optional<SpeculativeSettings> speculative{};
};

// The generation settings a grid starts from: its profile's (GridProfile).
GenerationSettings default_generation(GridProfile profile);

// What a judge output that does not parse counts as: kvsafe leaves it unjudged (out of every
// rate); the paper's code counts it as not refused.
enum class UnparsedVerdict { kUnjudged, kNotRefused };
std::string_view to_string(UnparsedVerdict rule);  // "unjudged", "not_refused"

struct JudgeSpec {
  JudgeKind kind = JudgeKind::kKeyword;
  std::optional<std::filesystem::path> markers_file{};  // keyword judge: replaces the built-in list
  bool strip_spaces_fallback = false;                   // keyword judge: also match with spaces removed
  // keyword judge: the fallback for these models only (the paper: Yi's, which refuse with
  // irregular spacing); used when strip_spaces_fallback is false.
  std::vector<std::string> strip_spaces_models{};
  bool exact_apostrophes = false;  // keyword judge: no apostrophe look-alike mapping (the paper's rule)
  UnparsedVerdict unparsed = UnparsedVerdict::kUnjudged;  // model judge: an output that does not parse
  // model judge: a raw prompt template with {prompt} and {response} (eval/model_judge.h) instead of
  // the format's built-in one; profile paper: the paper's WildGuard prompt from $KVSAFE_DATA.
  std::optional<std::filesystem::path> template_file{};
  std::string model{};                                     // model judge: a `models` name or a path
  std::optional<std::filesystem::path> model_path{};       // the judge's weights (a models name resolved to its path)
  ModelJudgeFormat format = ModelJudgeFormat::kWildguard;  // model judge's prompt/answer format
};

// The diagnosis protocol's experiments (docs/grid.md, "diagnose"; orchestrator/diagnosis_plan.h
// says which cells each one adds and what it waits for).
enum class DiagnosisTask {
  kLayerAblation,    // each layer alone quantized on the calibration prompts
  kCumulative,       // layers added one by one, front-to-back and back-to-front
  kPcr,              // the critical layer alone, per tensor and per channel
  kPcrValidation,    // every layer per tensor / per channel / group-64 on the test prompts
  kProtectionSweep,  // top-k critical layers at FP16 or 8-bit, the rest per-token asymmetric
  kMitigation,       // the paper's six strategies (and the clean fp16_critical variant)
  kChannelAblation,  // channel subsets of the critical layer: outliers, random matched, ...
  kMitigate,         // the prescribed fix, verified on the grid's refusal benchmarks (mitigate: auto)
};
std::string_view to_string(DiagnosisTask task);  // "layer_ablation", "cumulative", ...
std::optional<DiagnosisTask> parse_diagnosis_task(std::string_view text);
// Every task name, in enum order (messages, and `kvsafe diagnose` on a grid that lists none).
const std::vector<std::string_view>& diagnosis_task_names();

// The paper's diagnosis protocol: its constants (DESIGN.md, "The paper's protocol") and the
// experiments a grid runs with them.
struct DiagnoseSpec {
  std::int64_t calibration_prompts = 20;
  std::int64_t bits = 3;
  double critical_flip_threshold = 0.10;
  double outlier_fraction = 0.05;
  double pcr_low = 0.30;
  double pcr_high = 0.70;
  std::vector<DiagnosisTask> tasks{};            // experiments `kvsafe run` adds; empty: none
  std::vector<std::string> models{};             // models diagnosed (names); empty: every model
  std::vector<int> critical_layers{};            // explicit critical layers, worst first: derive none
  std::int64_t test_prompts = 200;               // first AdvBench prompts of pcr_validation, protection, mitigation
  std::optional<std::int64_t> max_new_tokens{};  // the diagnosis cells' generation length; unset: generation's
  std::vector<int> protect_top_k = {1, 2, 3};    // protection_sweep's k values
  std::vector<int> mitigation_bits = {4, 3};     // protection_sweep's, mitigation's and mitigate's bit widths
  bool mitigate_auto = false;                    // `mitigate: auto`: tasks mitigate, pcr and layer_ablation added
};

struct ExecutionSpec {
  std::int64_t shard_size = 32;         // prompts per shard
  std::int64_t retries = 2;             // extra attempts for a failed shard
  std::int64_t worker_timeout_s = 600;  // a busy worker silent this long (no result, no heartbeat) is hung
  std::int64_t grace_period_s = 60;     // after SIGTERM, time to finish shards in flight
};

struct SlurmSpec {
  std::string partition = "gpu";
  std::int64_t nodes = 1;
  std::int64_t gpus_per_node = 8;
  std::string time = "24:00:00";
  std::optional<std::string> account{};
  std::vector<std::string> extra{};  // extra sbatch lines' options, e.g. "--qos=normal"
};

// Keys an exclude rule may test. Values are compared in canonical text form
// (bits "4", temperature "0.7", symmetric "true", label "int4-ptok-asym").
enum class ExcludeKey {
  kModel,
  kBenchmark,
  kTask,
  kKv,
  kScheme,
  kBits,
  kSymmetric,
  kGranularity,
  kKeyGranularity,
  kValueGranularity,
  kGroupSize,
  kResidual,
  kPlacement,
  kTemperature,
  kSeed,
  kDraft,  // generation.speculative's draft model; "none" for plain decoding
};
std::string_view to_string(ExcludeKey key);

struct ExcludeCondition {
  ExcludeKey key = ExcludeKey::kModel;
  std::vector<std::string> any_of{};  // canonical text of the accepted values
};

struct ExcludeRule {
  std::vector<ExcludeCondition> conditions{};  // all must hold
  SourceLocation where{};
};

struct GridSpec {
  std::string name{};
  GridProfile profile = GridProfile::kKvsafe;
  std::optional<std::string> description{};
  std::string display_name{};        // how diagnostics name the file
  std::filesystem::path base_dir{};  // relative paths in the grid resolve against this
  std::vector<ModelSpec> models{};
  std::vector<KvSpec> kv_specs{};          // canonical, after sweeps and zip, duplicates removed
  std::vector<SourceLocation> kv_where{};  // the kv_cache entry each kv_specs[i] came from
  std::vector<BenchmarkSpec> benchmarks{};
  std::vector<GenerationSettings> generations{};  // after temperature/seed sweeps, in order
  JudgeSpec judge{};
  DiagnoseSpec diagnose{};
  ExecutionSpec execution{};
  std::optional<SlurmSpec> slurm{};  // absent when the grid has no `slurm` section
  std::vector<ExcludeRule> exclude{};

  // results/<name>.db: the database `kvsafe run` writes unless told otherwise.
  std::filesystem::path default_db_path() const { return std::filesystem::path("results") / (name + ".db"); }
  const ModelSpec* find_model(std::string_view model_name) const;
};

}  // namespace kvsafe::orchestrator
