#pragma once
// Plain structs that cross the db/ boundary: what the orchestrator writes and what status
// and progress read back. No SQLite types here; every field says its unit or meaning.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvsafe::db {

// The state of a cell or a shard. Cell: pending (no shard started), running (started, not
// all shards done), done (every shard done), failed (a shard ran out of attempts).
enum class ShardStatus { kPending, kRunning, kDone, kFailed };
using CellStatus = ShardStatus;

// "pending", "running", "done", "failed": the text stored in the database.
std::string_view to_string(ShardStatus status);
// Inverse of to_string; nullopt for any other text.
std::optional<ShardStatus> parse_shard_status(std::string_view text);

// A cell's status from its shards' counts: failed if any shard failed, done if all are done,
// running if any is running or done, else pending (the store and merge both apply it).
CellStatus cell_status_of_shards(std::int64_t total, std::int64_t running, std::int64_t done, std::int64_t failed);

struct ExperimentRecord {
  std::string name{};         // unique key: re-registering a name updates the grid fields
  std::string grid_path{};    // the grid YAML as given on the command line
  std::string grid_sha256{};  // hex SHA-256 of grid_text
  std::string grid_text{};    // the grid file's full text, kept for provenance
};

struct ModelRecord {
  std::string name{};                  // unique key, as written in the grid
  std::string path{};                  // weights directory or file
  std::string sha256{};                // hex SHA-256 of the weights, or empty when not computed
  std::string architecture{};          // e.g. "llama", "qwen2"
  std::int64_t n_params = 0;           // parameter count
  std::string chat_template{};         // the chat template's name as the engine chose it; empty: not known
  std::string chat_template_sha256{};  // hex SHA-256 of the template's text/definition; empty: not known
  // Its folder's generation_config.json as read ("repetition_penalty 1.05, eos [...]"); empty:
  // none (a GGUF file, a folder without one). In runs.models_json only, when set.
  std::string generation_config{};
};

struct CellRecord {
  std::string id{};               // hash of the cell's canonical form (computed by the orchestrator)
  std::string model{};            // model name
  std::string kv_hash{};          // hash of the KV spec's canonical JSON
  std::string kv_label{};         // short label, e.g. "int4-g128-asym"
  std::string kv_json{};          // the KV spec's canonical JSON
  double kv_effective_bits = 16;  // payload + scales + zeros + outliers, bits per element
  std::string task{};             // refusal, over_refusal, perplexity, ...
  std::string benchmark{};        // benchmark or dataset name
  std::string canonical_json{};   // the cell's canonical JSON (its id hashes this)
  std::int64_t n_prompts = 0;     // prompts (or windows) the cell covers: [0, n_prompts)
};

// The part a cell plays in a model's diagnosis (table diagnosis_roles).
struct DiagnosisRoleRecord {
  std::string model{};
  std::string task{};         // a diagnosis task name, or "baseline"
  std::string arm{};          // unique within (experiment, model, task)
  std::string cell_id{};      // a registered cell
  std::string detail_json{};  // {"layer":3,"prompts":"calibration"}, ...
};

// A model's diagnosis as decided from stored results (report/diagnosis_report.h), kept in the
// `diagnoses` table with its layer profile in `pcr_layers`: the failure mode and the prescribed
// fix with the numbers that decided them, so a database says what it concluded without a
// recomputation. One per (model, calibration baseline cell): a later decision replaces it.
struct DiagnosisLayerRecord {
  std::int64_t layer = 0;
  double flip_rate = 0;  // conditional flip with the layer alone quantized
  std::int64_t n = 0;    // prompts the baseline refused (the flip's denominator)
  bool critical = false;
};

struct DiagnosisRecord {
  std::string model{};
  std::string cell_id{};  // the calibration baseline cell (full precision) the flips pair with
  std::string mode{};     // eval::FailureMode's name
  std::optional<double> pcr{};
  std::string scores_json{};            // critical layers, PCR interval, rule, counts
  std::string thresholds_json{};        // critical_flip_threshold, pcr_low, pcr_high, bits
  std::string recommended_spec_json{};  // the prescription and the layers it names
  std::vector<DiagnosisLayerRecord> layers{};
};

struct RegisterResult {
  std::int64_t new_cells = 0;       // cells inserted by this call
  std::int64_t existing_cells = 0;  // cells already present (left as they were, or extended)
  std::int64_t extended_cells = 0;  // existing cells whose n_prompts grew: shards added for the new range
  std::int64_t new_shards = 0;      // shards inserted by this call
};

// One shard: prompts [begin, end) of a cell. (cell_id, begin) identifies it; end rides
// along so a scheduler needs no second lookup.
struct ShardKey {
  std::string cell_id{};
  std::int64_t begin = 0;
  std::int64_t end = 0;
  auto operator<=>(const ShardKey&) const = default;
};

struct GenerationRow {
  std::int64_t prompt_index = 0;   // position in the benchmark, within the shard's [begin, end)
  std::string prompt_id{};         // the benchmark's own id for the prompt
  std::string prompt_sha256{};     // hex SHA-256 of the prompt text
  std::string rendered_sha256{};   // hex SHA-256 of the chat-template-rendered prompt
  std::string output_text{};       // the model's answer
  std::int64_t prompt_tokens = 0;  // tokens in the rendered prompt
  std::int64_t output_tokens = 0;  // tokens generated
  std::optional<bool> refused{};   // the judge's verdict; empty when the task has no judge
  std::string judge_json{};        // judge details (matched keywords, model judge output); may be empty
  double seconds = 0;              // wall time spent on this prompt
  // Divergence from full precision at the first generated token (empty when not computed,
  // e.g. the full-precision cell itself): the token chosen, the full-precision argmax for the
  // same prompt, and KL(full || quantized) of the two next-token distributions, in nats.
  std::optional<std::int64_t> first_token_id{};
  std::optional<std::int64_t> reference_first_token_id{};
  std::optional<double> first_token_kl{};
  // Mean squared error the KV quantizer made on keys / values over the forward calls that held
  // this prompt (a batch shares its calls); empty without a quantizer.
  std::optional<double> kv_mse_key{};
  std::optional<double> kv_mse_value{};
};

struct MetricRow {
  std::string name{};  // e.g. "refusal_rate", "flip_rate"
  double value = 0;
  std::optional<double> ci_low{};  // 95% CI bounds, when the metric has one
  std::optional<double> ci_high{};
  std::int64_t n = 0;  // observations behind the value
};

struct PplWindowRow {
  std::int64_t window_index = 0;  // within the shard's [begin, end)
  std::int64_t begin_token = 0;   // first token of the window in the dataset
  std::int64_t n_tokens = 0;      // tokens scored
  double nll_sum = 0;             // sum of negative log-likelihoods, nats
};

// Per-channel key magnitude at one layer for one prompt (task key_magnitudes): max |K| over the
// prompt's tokens of the keys before any KV quantization (k_proj output, pre-RoPE).
struct KeyMagnitudeRow {
  std::int64_t prompt_index = 0;
  std::int64_t layer = 0;
  std::int64_t tokens = 0;       // tokens the max is over (after truncation to 512)
  std::vector<float> max_abs{};  // one value per channel (kv_heads * head_dim)
};

// The residual stream at the last prompt token, summed over one shard's prompts of one class,
// at one layer (task refusal_direction): the refusal direction is the difference of the class
// means of the full-precision cell; a quantized cell's harmful mean read along it gives the
// erosion (report/refusal_direction_report.h).
struct DirectionSumRow {
  std::int64_t layer = 0;
  bool harmful = true;       // the class: harmful (refusal expected) or harmless prompts
  std::int64_t prompts = 0;  // prompts summed (> 0)
  std::vector<float> sum{};  // hidden_size values, summed in float64 and stored as float32
};

// One IFEval instruction's verdicts on one answer (task ifeval; eval/ifeval_instructions.h):
// strict and loose as the reference defines them, both empty when the instruction cannot be
// scored without guessing (`unscored` says why). The answer itself is the prompt's GenerationRow.
struct IfevalVerdictRow {
  std::int64_t prompt_index = 0;
  std::int64_t instruction_index = 0;  // position in the prompt's instruction_id_list
  std::string instruction_id{};        // e.g. "punctuation:no_comma"
  std::optional<bool> strict{};
  std::optional<bool> loose{};
  std::string unscored{};  // "" when scored
};

// What a worker sends back for one finished shard; committed as one transaction.
struct ShardResult {
  ShardKey shard{};
  std::vector<GenerationRow> generations{};
  std::vector<MetricRow> metrics{};  // upserted: a later value for (cell, name) replaces the earlier
  std::vector<PplWindowRow> ppl_windows{};
  std::vector<KeyMagnitudeRow> key_magnitudes{};    // task key_magnitudes: one per (prompt, layer)
  std::vector<DirectionSumRow> direction_sums{};    // task refusal_direction: one per (layer, class present)
  std::vector<IfevalVerdictRow> ifeval_verdicts{};  // task ifeval: one per (prompt, instruction)
};

struct StatusCounts {
  std::int64_t pending = 0;
  std::int64_t running = 0;
  std::int64_t done = 0;
  std::int64_t failed = 0;
  std::int64_t total() const { return pending + running + done + failed; }
  bool operator==(const StatusCounts&) const = default;
};

struct Progress {
  StatusCounts cells{};
  StatusCounts shards{};
  std::int64_t prompts_done = 0;   // prompts in done shards
  std::int64_t prompts_total = 0;  // prompts in all shards
};

struct RunRecord {
  std::optional<std::int64_t> experiment_id{};  // the experiment run, if any
  std::string command_line{};                   // argv joined with spaces
  std::vector<std::string> hosts{};             // host names of the ranks (stored as a JSON array)
  int ranks = 1;                                // MPI world size
  std::string slurm_job_id{};                   // empty outside SLURM
  std::string slurm_json{};                     // cluster/slurm_job.h's record; empty: {}
  std::string git_commit{};                     // empty: build_info().git_commit is recorded
  std::string versions_json{};                  // library versions; empty: build_info() as JSON
};

struct PromptRecord {
  std::int64_t prompt_index = 0;  // position in the benchmark, 0-based
  std::string prompt_id{};        // the benchmark's own id
  std::string text{};             // the prompt text
  std::string category{};         // benchmark category, may be empty
  bool harmful = true;            // harmful (should be refused) or benign
  std::string source{};           // file or URL the prompt came from
};

}  // namespace kvsafe::db
