#include "db/schema.h"

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "db/connection.h"
#include "db/db_error.h"

namespace kvsafe::db {
namespace {

// NOTE: timestamps are ISO-8601 UTC text written by SQLite itself
// (strftime('%Y-%m-%dT%H:%M:%fZ','now')), so every row of one database uses one clock.
// Status columns carry CHECK constraints so a bug cannot invent a state.

constexpr std::string_view kV1Experiments = R"sql(
CREATE TABLE experiments (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  grid_path   TEXT NOT NULL,
  grid_sha256 TEXT NOT NULL,
  grid_text   TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
))sql";

constexpr std::string_view kV1Models = R"sql(
CREATE TABLE models (
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  path          TEXT NOT NULL,
  sha256        TEXT NOT NULL DEFAULT '',
  architecture  TEXT NOT NULL DEFAULT '',
  n_params      INTEGER NOT NULL DEFAULT 0 CHECK (n_params >= 0),
  registered_at TEXT NOT NULL,
  updated_at    TEXT NOT NULL
))sql";

constexpr std::string_view kV1KvSpecs = R"sql(
CREATE TABLE kv_specs (
  hash           TEXT PRIMARY KEY,
  canonical_json TEXT NOT NULL,
  label          TEXT NOT NULL,
  effective_bits REAL NOT NULL
) WITHOUT ROWID)sql";

constexpr std::string_view kV1Benchmarks = R"sql(
CREATE TABLE benchmarks (
  name          TEXT PRIMARY KEY,
  source        TEXT NOT NULL DEFAULT '',
  registered_at TEXT NOT NULL
) WITHOUT ROWID)sql";

constexpr std::string_view kV1Prompts = R"sql(
CREATE TABLE prompts (
  benchmark    TEXT NOT NULL REFERENCES benchmarks(name),
  prompt_index INTEGER NOT NULL CHECK (prompt_index >= 0),
  prompt_id    TEXT NOT NULL,
  text         TEXT NOT NULL,
  text_sha256  TEXT NOT NULL,
  category     TEXT NOT NULL DEFAULT '',
  harmful      INTEGER NOT NULL CHECK (harmful IN (0, 1)),
  source       TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (benchmark, prompt_index)
) WITHOUT ROWID)sql";

constexpr std::string_view kV1Cells = R"sql(
CREATE TABLE cells (
  id             TEXT PRIMARY KEY,
  model          TEXT NOT NULL,
  kv_hash        TEXT NOT NULL REFERENCES kv_specs(hash),
  task           TEXT NOT NULL,
  benchmark      TEXT NOT NULL,
  canonical_json TEXT NOT NULL,
  n_prompts      INTEGER NOT NULL CHECK (n_prompts > 0),
  status         TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'done', 'failed')),
  attempts       INTEGER NOT NULL DEFAULT 0,
  error          TEXT,
  created_at     TEXT NOT NULL,
  started_at     TEXT,
  finished_at    TEXT
) WITHOUT ROWID)sql";

constexpr std::string_view kV1ExperimentCells = R"sql(
CREATE TABLE experiment_cells (
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  cell_id       TEXT NOT NULL REFERENCES cells(id),
  PRIMARY KEY (experiment_id, cell_id)
) WITHOUT ROWID)sql";

constexpr std::string_view kV1Shards = R"sql(
CREATE TABLE shards (
  cell_id     TEXT NOT NULL REFERENCES cells(id),
  begin       INTEGER NOT NULL CHECK (begin >= 0),
  end         INTEGER NOT NULL CHECK (end > begin),
  status      TEXT NOT NULL DEFAULT 'pending'
              CHECK (status IN ('pending', 'running', 'done', 'failed')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  error       TEXT,
  worker      TEXT,
  started_at  TEXT,
  finished_at TEXT,
  PRIMARY KEY (cell_id, begin)
) WITHOUT ROWID)sql";

constexpr std::string_view kV1Generations = R"sql(
CREATE TABLE generations (
  id              INTEGER PRIMARY KEY,
  cell_id         TEXT NOT NULL REFERENCES cells(id),
  prompt_index    INTEGER NOT NULL CHECK (prompt_index >= 0),
  prompt_id       TEXT NOT NULL,
  prompt_sha256   TEXT NOT NULL,
  rendered_sha256 TEXT NOT NULL,
  output_text     TEXT NOT NULL,
  prompt_tokens   INTEGER NOT NULL CHECK (prompt_tokens >= 0),
  output_tokens   INTEGER NOT NULL CHECK (output_tokens >= 0),
  refused         INTEGER CHECK (refused IN (0, 1)),
  judge_json      TEXT,
  seconds         REAL NOT NULL CHECK (seconds >= 0),
  UNIQUE (cell_id, prompt_index)
))sql";

constexpr std::string_view kV1Metrics = R"sql(
CREATE TABLE metrics (
  id      INTEGER PRIMARY KEY,
  cell_id TEXT NOT NULL REFERENCES cells(id),
  name    TEXT NOT NULL,
  value   REAL NOT NULL,
  ci_low  REAL,
  ci_high REAL,
  n       INTEGER NOT NULL DEFAULT 0 CHECK (n >= 0),
  UNIQUE (cell_id, name)
))sql";

constexpr std::string_view kV1Runs = R"sql(
CREATE TABLE runs (
  id            INTEGER PRIMARY KEY,
  experiment_id INTEGER REFERENCES experiments(id),
  started_at    TEXT NOT NULL,
  ended_at      TEXT,
  command_line  TEXT NOT NULL,
  hosts         TEXT NOT NULL,
  ranks         INTEGER NOT NULL CHECK (ranks >= 1),
  slurm_job_id  TEXT NOT NULL DEFAULT '',
  git_commit    TEXT NOT NULL DEFAULT '',
  versions_json TEXT NOT NULL DEFAULT '{}',
  exit_code     INTEGER,
  status        TEXT NOT NULL DEFAULT 'running'
))sql";

constexpr std::string_view kV2PplWindows = R"sql(
CREATE TABLE ppl_windows (
  id           INTEGER PRIMARY KEY,
  cell_id      TEXT NOT NULL REFERENCES cells(id),
  window_index INTEGER NOT NULL CHECK (window_index >= 0),
  begin_token  INTEGER NOT NULL CHECK (begin_token >= 0),
  n_tokens     INTEGER NOT NULL CHECK (n_tokens > 0),
  nll_sum      REAL NOT NULL,
  UNIQUE (cell_id, window_index)
))sql";

constexpr std::string_view kV2Diagnoses = R"sql(
CREATE TABLE diagnoses (
  id                    INTEGER PRIMARY KEY,
  cell_id               TEXT REFERENCES cells(id),
  model                 TEXT NOT NULL,
  kv_hash               TEXT NOT NULL REFERENCES kv_specs(hash),
  mode                  TEXT NOT NULL,
  pcr                   REAL,
  scores_json           TEXT NOT NULL DEFAULT '{}',
  thresholds_json       TEXT NOT NULL DEFAULT '{}',
  recommended_spec_json TEXT NOT NULL DEFAULT '{}',
  created_at            TEXT NOT NULL
))sql";

// Per-layer results of a diagnosis: the one-layer-at-a-time flip rate (critical layers).
constexpr std::string_view kV2PcrLayers = R"sql(
CREATE TABLE pcr_layers (
  diagnosis_id INTEGER NOT NULL REFERENCES diagnoses(id),
  layer        INTEGER NOT NULL CHECK (layer >= 0),
  flip_rate    REAL NOT NULL,
  n            INTEGER NOT NULL DEFAULT 0,
  critical     INTEGER NOT NULL DEFAULT 0 CHECK (critical IN (0, 1)),
  flip_per_tensor  REAL,
  flip_per_channel REAL,
  PRIMARY KEY (diagnosis_id, layer)
) WITHOUT ROWID)sql";

// Per-channel key statistics at a diagnosed layer (outlier channels = top 5% of max|K|).
constexpr std::string_view kV2PcrChannels = R"sql(
CREATE TABLE pcr_channels (
  diagnosis_id INTEGER NOT NULL REFERENCES diagnoses(id),
  layer        INTEGER NOT NULL CHECK (layer >= 0),
  head         INTEGER NOT NULL DEFAULT 0,
  channel      INTEGER NOT NULL CHECK (channel >= 0),
  max_abs_k    REAL NOT NULL,
  outlier      INTEGER NOT NULL DEFAULT 0 CHECK (outlier IN (0, 1)),
  PRIMARY KEY (diagnosis_id, layer, head, channel)
) WITHOUT ROWID)sql";

// One verdict of one judge on one stored generation (`kvsafe judge` re-judges without
// regenerating; generations.refused keeps the run's own judge). judge_key = sha256 of
// judge_json, the judge's canonical spec: the same judge never judges a generation twice
// (resume), a different one adds rows beside it. refused is NULL exactly when the judge's
// output did not parse (no verdict: never counted as compliance).
constexpr std::string_view kV3Judgements = R"sql(
CREATE TABLE judgements (
  id            INTEGER PRIMARY KEY,
  generation_id INTEGER NOT NULL REFERENCES generations(id),
  judge_key     TEXT NOT NULL,
  judge_label   TEXT NOT NULL,
  judge_json    TEXT NOT NULL,
  parsed        INTEGER NOT NULL CHECK (parsed IN (0, 1)),
  refused       INTEGER CHECK (refused IN (0, 1)),
  raw_output    TEXT NOT NULL,
  detail_json   TEXT NOT NULL DEFAULT '{}',
  seconds       REAL NOT NULL DEFAULT 0 CHECK (seconds >= 0),
  created_at    TEXT NOT NULL,
  CHECK ((parsed = 1) = (refused IS NOT NULL)),
  UNIQUE (generation_id, judge_key)
))sql";

// Version 4: per-prompt divergence from full precision (first generated token: its id, the
// full-precision argmax of the same prompt, KL(full || quantized) in nats; the KV quantizer's
// mean squared error over the forward calls that held the prompt, keys and values apart),
// and the provenance a run needs to be reproduced: which chat template rendered the prompts
// and the weights' hash as each run saw them (runs.models_json).
constexpr std::string_view kV4GenerationFirstToken = "ALTER TABLE generations ADD COLUMN first_token_id INTEGER";
constexpr std::string_view kV4GenerationReferenceToken =
    "ALTER TABLE generations ADD COLUMN reference_first_token_id INTEGER";
constexpr std::string_view kV4GenerationKl = "ALTER TABLE generations ADD COLUMN first_token_kl REAL";
constexpr std::string_view kV4GenerationMseKey = "ALTER TABLE generations ADD COLUMN kv_mse_key REAL";
constexpr std::string_view kV4GenerationMseValue = "ALTER TABLE generations ADD COLUMN kv_mse_value REAL";
constexpr std::string_view kV4ModelTemplate = "ALTER TABLE models ADD COLUMN chat_template TEXT NOT NULL DEFAULT ''";
constexpr std::string_view kV4ModelTemplateHash =
    "ALTER TABLE models ADD COLUMN chat_template_sha256 TEXT NOT NULL DEFAULT ''";
constexpr std::string_view kV4RunModels = "ALTER TABLE runs ADD COLUMN models_json TEXT NOT NULL DEFAULT '[]'";

// Version 5: the part each cell plays in a model's diagnosis (orchestrator/diagnosis_plan.h):
// the layer-ablation cell of layer 3, PCR's per-channel arm, ... One cell may play several
// roles; a role of an experiment names one cell (an edited grid re-points it). detail_json
// holds what the report needs ({"layer":3,"prompts":"calibration"}).
constexpr std::string_view kV5DiagnosisRoles = R"sql(
CREATE TABLE diagnosis_roles (
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  model         TEXT NOT NULL,
  task          TEXT NOT NULL,
  arm           TEXT NOT NULL,
  cell_id       TEXT NOT NULL REFERENCES cells(id),
  detail_json   TEXT NOT NULL DEFAULT '{}',
  created_at    TEXT NOT NULL,
  PRIMARY KEY (experiment_id, model, task, arm)
) WITHOUT ROWID)sql";

// Version 6: per-prompt, per-layer key magnitudes (task key_magnitudes, the channel ablation's
// input): max |K| per channel over the prompt's tokens, as a JSON array of kv_heads * head_dim
// float32 values written in their shortest round-trip form (they read back exactly).
constexpr std::string_view kV6KeyMagnitudes = R"sql(
CREATE TABLE key_magnitudes (
  cell_id      TEXT NOT NULL REFERENCES cells(id),
  prompt_index INTEGER NOT NULL CHECK (prompt_index >= 0),
  layer        INTEGER NOT NULL CHECK (layer >= 0),
  tokens       INTEGER NOT NULL CHECK (tokens >= 0),
  max_abs_json TEXT NOT NULL,
  PRIMARY KEY (cell_id, prompt_index, layer)
) WITHOUT ROWID)sql";

// Version 7: the refusal direction's inputs (task refusal_direction): per shard, layer and
// class, the sum over the shard's prompts of the residual stream at the last prompt token, as
// hidden_size float32 values, little-endian (numpy: np.frombuffer(sum_f32, '<f4')). A shard
// is committed once, so a cell's class mean is SUM(sum) / SUM(prompts) over its shards. Sums
// instead of per-prompt rows: the erosion reads only means, and a 7B model's 256 prompts x 32
// layers x 4096 floats would be 128 MiB per cell.
constexpr std::string_view kV7DirectionSums = R"sql(
CREATE TABLE direction_sums (
  cell_id     TEXT NOT NULL REFERENCES cells(id),
  shard_begin INTEGER NOT NULL CHECK (shard_begin >= 0),
  layer       INTEGER NOT NULL CHECK (layer >= 0),
  harmful     INTEGER NOT NULL CHECK (harmful IN (0, 1)),
  prompts     INTEGER NOT NULL CHECK (prompts > 0),
  sum_f32     BLOB NOT NULL CHECK (length(sum_f32) > 0 AND length(sum_f32) % 4 = 0),
  PRIMARY KEY (cell_id, shard_begin, layer, harmful)
))sql";

// Version 9: IFEval's per-instruction verdicts (task ifeval): strict and loose for each
// instruction of each answer (the answer is the generations row of the same cell and prompt);
// both NULL, with `unscored` saying why, for an instruction that cannot be scored without
// guessing. Accuracies are computed from these rows (report/run_summary.h).
constexpr std::string_view kV9IfevalVerdicts = R"sql(
CREATE TABLE ifeval_verdicts (
  cell_id           TEXT NOT NULL REFERENCES cells(id),
  prompt_index      INTEGER NOT NULL CHECK (prompt_index >= 0),
  instruction_index INTEGER NOT NULL CHECK (instruction_index >= 0),
  instruction_id    TEXT NOT NULL,
  strict            INTEGER CHECK (strict IN (0, 1)),
  loose             INTEGER CHECK (loose IN (0, 1)),
  unscored          TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (cell_id, prompt_index, instruction_index)
) WITHOUT ROWID)sql";

const std::vector<Migration> kMigrations = {
    {.version = 1,
     .description = "experiments, models, kv specs, prompts, cells, shards, generations, metrics, runs",
     .steps = {kV1Experiments, kV1Models, kV1KvSpecs, kV1Benchmarks, kV1Prompts, kV1Cells, kV1ExperimentCells,
               kV1Shards, kV1Generations, kV1Metrics, kV1Runs, "CREATE INDEX cells_by_status ON cells(status)",
               "CREATE INDEX cells_by_model_kv ON cells(model, kv_hash)",
               "CREATE INDEX experiment_cells_by_cell ON experiment_cells(cell_id)",
               "CREATE INDEX shards_by_status ON shards(status, cell_id, begin)",
               "CREATE INDEX runs_by_experiment ON runs(experiment_id)"}},
    {.version = 2,
     .description = "perplexity windows, PCR diagnoses (layers, channels)",
     .steps = {kV2PplWindows, kV2Diagnoses, kV2PcrLayers, kV2PcrChannels,
               "CREATE INDEX diagnoses_by_model_kv ON diagnoses(model, kv_hash)",
               "CREATE INDEX diagnoses_by_cell ON diagnoses(cell_id)"}},
    {.version = 3,
     .description = "judgements: verdicts of re-run judges on stored generations",
     .steps = {kV3Judgements, "CREATE INDEX judgements_by_judge ON judgements(judge_key, generation_id)"}},
    {.version = 4,
     .description = "first-token divergence and KV MSE per generation; chat template and weights per run",
     .steps = {kV4GenerationFirstToken, kV4GenerationReferenceToken, kV4GenerationKl, kV4GenerationMseKey,
               kV4GenerationMseValue, kV4ModelTemplate, kV4ModelTemplateHash, kV4RunModels}},
    {.version = 5,
     .description = "diagnosis roles: which cell is which arm of a model's diagnosis",
     .steps = {kV5DiagnosisRoles, "CREATE INDEX diagnosis_roles_by_cell ON diagnosis_roles(cell_id)"}},
    {.version = 6,
     .description = "key magnitudes: per-channel max |K| per prompt and layer",
     .steps = {kV6KeyMagnitudes}},
    {.version = 7,
     .description = "direction sums: per shard, layer and class, the summed last-token residual",
     .steps = {kV7DirectionSums}},
    {.version = 8,
     .description = "runs: the SLURM job each run ran in (nodes, tasks, requeue count)",
     .steps = {"ALTER TABLE runs ADD COLUMN slurm_json TEXT NOT NULL DEFAULT '{}'"}},
    {.version = 9,
     .description = "IFEval verdicts: strict and loose per instruction of each answer",
     .steps = {kV9IfevalVerdicts}},
};

}  // namespace

const std::vector<Migration>& schema_migrations() {
  return kMigrations;
}

int latest_schema_version() {
  return kMigrations.back().version;
}

int schema_version(Connection& connection) {
  return static_cast<int>(connection.query_int64("PRAGMA user_version"));
}

void check_schema_not_newer(Connection& connection) {
  const int version = schema_version(connection);
  if (version > latest_schema_version()) {
    throw DbError(kvsafe::detail::concat(connection.path(), " has schema version ", version,
                                         ", this kvsafe knows up to ", latest_schema_version(), "; upgrade kvsafe"));
  }
}

int migrate(Connection& connection, int target_version) {
  if (target_version < 0) target_version = latest_schema_version();
  KVSAFE_CHECK(target_version <= latest_schema_version(), "migrate: target version ", target_version,
               " is newer than the latest known (", latest_schema_version(), ")");
  check_schema_not_newer(connection);
  int version = schema_version(connection);
  for (const Migration& migration : kMigrations) {
    if (migration.version <= version || migration.version > target_version) continue;
    Transaction transaction(connection);
    // NOTE: read the version again inside the write transaction: another process may have
    // migrated between our first read and BEGIN IMMEDIATE.
    const int current = schema_version(connection);
    if (current >= migration.version) {
      version = current;
      continue;
    }
    KVSAFE_ASSERT(current == migration.version - 1, "migrations must be consecutive: at ", current, ", next is ",
                  migration.version);
    for (std::string_view step : migration.steps) {
      connection.exec(step);
    }
    connection.exec(kvsafe::detail::concat("PRAGMA user_version = ", migration.version));
    transaction.commit();
    version = migration.version;
    spdlog::info("{}: migrated to schema version {} ({})", connection.path(), version, migration.description);
  }
  return version;
}

}  // namespace kvsafe::db
