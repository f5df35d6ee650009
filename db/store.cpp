// Store: opening, registration and runs. The shard state machine is in store_shards.cpp.
#include "db/store.h"

#include <sqlite3.h>

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/sha256.h"
#include "common/version.h"
#include "db/connection.h"
#include "db/schema.h"
#include "db/store_internal.h"
#include "db/writer_lock.h"

namespace kvsafe::db {

std::string_view to_string(ShardStatus status) {
  switch (status) {
    case ShardStatus::kPending:
      return "pending";
    case ShardStatus::kRunning:
      return "running";
    case ShardStatus::kDone:
      return "done";
    case ShardStatus::kFailed:
      return "failed";
  }
  KVSAFE_ASSERT(false, "unknown ShardStatus ", static_cast<int>(status));
}

CellStatus cell_status_of_shards(std::int64_t total, std::int64_t running, std::int64_t done, std::int64_t failed) {
  if (failed > 0) return CellStatus::kFailed;
  if (total > 0 && done == total) return CellStatus::kDone;
  if (running > 0 || done > 0) return CellStatus::kRunning;
  return CellStatus::kPending;
}

std::optional<ShardStatus> parse_shard_status(std::string_view text) {
  for (const ShardStatus status :
       {ShardStatus::kPending, ShardStatus::kRunning, ShardStatus::kDone, ShardStatus::kFailed}) {
    if (to_string(status) == text) return status;
  }
  return std::nullopt;
}

ShardStatus stored_shard_status(std::string_view text) {
  const std::optional<ShardStatus> status = parse_shard_status(text);
  KVSAFE_CHECK(status.has_value(), "unknown status '", text, "' (expected pending, running, done or failed)");
  return *status;
}

Store::Store(std::filesystem::path path, std::unique_ptr<WriterLock> lock, std::unique_ptr<Connection> connection)
    : path_(std::move(path)), lock_(std::move(lock)), connection_(std::move(connection)) {}

Store::~Store() = default;

std::unique_ptr<Store> Store::open(const std::filesystem::path& path, const StoreOptions& options) {
  std::unique_ptr<WriterLock> lock;
  if (!options.read_only) {
    if (path.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
      if (ec) {
        throw DbError(kvsafe::detail::concat(path.string(), ": cannot create directory ", path.parent_path().string(),
                                             ": ", ec.message()));
      }
    }
    // NOTE: the lock comes before the first write (migration), so two writers starting at
    // once never both migrate; the loser is refused with the winner's name.
    if (options.take_writer_lock) lock = WriterLock::acquire(path, options.holder_description);
  }
  auto connection = std::make_unique<Connection>(path, ConnectionOptions{.read_only = options.read_only,
                                                                         .create = !options.read_only,
                                                                         .busy_timeout_ms = options.busy_timeout_ms});
  // The first read of the file: a non-SQLite file fails here with "... is not a SQLite database".
  check_schema_not_newer(*connection);
  connection->exec("PRAGMA foreign_keys = ON");
  if (!options.read_only) {
    std::string mode;
    {
      Statement journal(*connection, "PRAGMA journal_mode = WAL");
      if (journal.step()) mode = journal.column_text(0);
    }  // NOTE: finalized here: an unfinished statement would make the migration's COMMIT fail
    if (mode != "wal") {
      spdlog::warn(
          "{}: journal mode is '{}', not WAL (the file system may not support it); readers will block the "
          "writer",
          path.string(), mode);
    }
    // NOTE: in WAL mode synchronous=NORMAL keeps the database consistent after a crash; a
    // power loss may lose the last commits, which a resumed run simply redoes.
    connection->exec("PRAGMA synchronous = NORMAL");
    migrate(*connection);
  } else {
    const int version = db::schema_version(*connection);
    if (version < latest_schema_version()) {
      spdlog::warn("{}: schema version {} is older than this kvsafe's {}; open it once for writing to migrate",
                   path.string(), version, latest_schema_version());
    }
  }
  return std::unique_ptr<Store>(new Store(path, std::move(lock), std::move(connection)));
}

int Store::schema_version() {
  return db::schema_version(*connection_);
}

void Store::require_writable(const char* operation) const {
  KVSAFE_DB_CHECK(path_, !connection_->read_only(), operation, ": the store was opened read-only");
}

std::int64_t Store::register_experiment(const ExperimentRecord& experiment) {
  require_writable("register_experiment");
  KVSAFE_DB_CHECK(path_, !experiment.name.empty(), "register_experiment: the experiment name is empty");
  Transaction transaction(*connection_);
  {
    auto upsert = connection_->cached(
        "INSERT INTO experiments(name, grid_path, grid_sha256, grid_text, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, " KVSAFE_SQL_NOW ", " KVSAFE_SQL_NOW
        ") "
        "ON CONFLICT(name) DO UPDATE SET grid_path = excluded.grid_path, grid_sha256 = excluded.grid_sha256, "
        "grid_text = excluded.grid_text, updated_at = excluded.updated_at "
        "WHERE grid_path IS NOT excluded.grid_path OR grid_sha256 IS NOT excluded.grid_sha256 "
        "OR grid_text IS NOT excluded.grid_text");
    upsert->bind(1, experiment.name).bind(2, experiment.grid_path).bind(3, experiment.grid_sha256);
    upsert->bind(4, experiment.grid_text).run();
  }
  auto select = connection_->cached("SELECT id FROM experiments WHERE name = ?1");
  select->bind(1, experiment.name);
  KVSAFE_ASSERT(select->step(), "experiment '", experiment.name, "' missing right after its upsert");
  const std::int64_t id = select->column_int64(0);
  select->reset();
  transaction.commit();
  return id;
}

void Store::register_model(const ModelRecord& model) {
  require_writable("register_model");
  KVSAFE_DB_CHECK(path_, !model.name.empty(), "register_model: the model name is empty");
  KVSAFE_DB_CHECK(path_, model.n_params >= 0, "register_model: model '", model.name, "' has n_params ", model.n_params);
  auto upsert = connection_->cached(
      "INSERT INTO models(name, path, sha256, architecture, n_params, chat_template, chat_template_sha256, "
      "registered_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, " KVSAFE_SQL_NOW ", " KVSAFE_SQL_NOW
      ") "
      // NOTE: an empty text (or n_params 0) means "not computed by this caller" (the grid
      // registers models before any worker has hashed the weights): keep the stored one.
      "ON CONFLICT(name) DO UPDATE SET path = excluded.path, "
      "sha256 = CASE WHEN excluded.sha256 = '' THEN models.sha256 ELSE excluded.sha256 END, "
      "architecture = CASE WHEN excluded.architecture = '' THEN models.architecture ELSE excluded.architecture END, "
      "n_params = CASE WHEN excluded.n_params = 0 THEN models.n_params ELSE excluded.n_params END, "
      "chat_template = CASE WHEN excluded.chat_template = '' THEN models.chat_template "
      "ELSE excluded.chat_template END, "
      "chat_template_sha256 = CASE WHEN excluded.chat_template_sha256 = '' THEN models.chat_template_sha256 "
      "ELSE excluded.chat_template_sha256 END, updated_at = excluded.updated_at "
      "WHERE path IS NOT excluded.path OR (excluded.sha256 <> '' AND sha256 IS NOT excluded.sha256) "
      "OR (excluded.architecture <> '' AND architecture IS NOT excluded.architecture) "
      "OR (excluded.n_params <> 0 AND n_params IS NOT excluded.n_params) "
      "OR (excluded.chat_template <> '' AND chat_template IS NOT excluded.chat_template) "
      "OR (excluded.chat_template_sha256 <> '' AND chat_template_sha256 IS NOT excluded.chat_template_sha256)");
  upsert->bind(1, model.name).bind(2, model.path).bind(3, model.sha256).bind(4, model.architecture);
  upsert->bind(5, model.n_params).bind(6, model.chat_template).bind(7, model.chat_template_sha256).run();
}

void Store::record_run_model(std::int64_t run_id, const ModelRecord& model) {
  require_writable("record_run_model");
  Transaction transaction(*connection_);
  register_model(model);
  auto select = connection_->cached("SELECT models_json FROM runs WHERE id = ?1");
  select->bind(1, run_id);
  KVSAFE_DB_CHECK(path_, select->step(), "record_run_model: no run with id ", run_id);
  nlohmann::json models = nlohmann::json::parse(select->column_text(0), nullptr, false);
  select->reset();
  if (!models.is_array()) models = nlohmann::json::array();
  nlohmann::json entry{{"name", model.name},
                       {"path", model.path},
                       {"sha256", model.sha256},
                       {"architecture", model.architecture},
                       {"n_params", model.n_params},
                       {"chat_template", model.chat_template},
                       {"chat_template_sha256", model.chat_template_sha256}};
  // NOTE: only when set, so the entries of models without one compare equal to older ones.
  if (!model.generation_config.empty()) entry["generation_config"] = model.generation_config;
  // One entry per model name: a second worker loading the same weights changes nothing,
  // different weights under the same name (edited between resumes) are both kept.
  bool present = false;
  for (const auto& existing : models) present = present || existing == entry;
  if (!present) models.push_back(entry);
  auto update = connection_->cached("UPDATE runs SET models_json = ?2 WHERE id = ?1");
  update->bind(1, run_id).bind(2, models.dump()).run();
  transaction.commit();
}

std::int64_t Store::register_prompts(const std::string& benchmark, const std::string& source,
                                     const std::vector<PromptRecord>& prompts) {
  require_writable("register_prompts");
  KVSAFE_DB_CHECK(path_, !benchmark.empty(), "register_prompts: the benchmark name is empty");
  Transaction transaction(*connection_);
  {
    auto insert =
        connection_->cached("INSERT INTO benchmarks(name, source, registered_at) VALUES (?1, ?2, " KVSAFE_SQL_NOW
                            ") "
                            "ON CONFLICT(name) DO NOTHING");
    insert->bind(1, benchmark).bind(2, source).run();
  }
  std::int64_t inserted = 0;
  for (const PromptRecord& prompt : prompts) {
    KVSAFE_DB_CHECK(path_, prompt.prompt_index >= 0, "register_prompts: benchmark '", benchmark,
                    "' has a negative prompt index ", prompt.prompt_index);
    const std::string sha = sha256_hex(prompt.text);
    auto insert = connection_->cached(
        "INSERT INTO prompts(benchmark, prompt_index, prompt_id, text, text_sha256, category, harmful, source) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(benchmark, prompt_index) DO NOTHING");
    insert->bind(1, benchmark).bind(2, prompt.prompt_index).bind(3, prompt.prompt_id).bind(4, prompt.text);
    insert->bind(5, sha).bind(6, prompt.category).bind(7, prompt.harmful ? 1 : 0).bind(8, prompt.source).run();
    if (connection_->changes() == 1) {
      ++inserted;
      continue;
    }
    auto existing = connection_->cached("SELECT text_sha256 FROM prompts WHERE benchmark = ?1 AND prompt_index = ?2");
    existing->bind(1, benchmark).bind(2, prompt.prompt_index);
    KVSAFE_ASSERT(existing->step(), "prompt missing after a conflicting insert");
    KVSAFE_DB_CHECK(path_, existing->column_text(0) == sha, "benchmark '", benchmark, "' prompt ", prompt.prompt_index,
                    " (", prompt.prompt_id,
                    ") differs from the text recorded earlier; the data set changed under "
                    "the same index: use a new benchmark name or a new database");
  }
  transaction.commit();
  return inserted;
}

RegisterResult Store::register_cells(std::int64_t experiment_id, const std::vector<CellRecord>& cells,
                                     std::int64_t shard_size) {
  require_writable("register_cells");
  KVSAFE_DB_CHECK(path_, shard_size > 0, "register_cells: shard_size must be positive, got ", shard_size);
  RegisterResult result;
  Transaction transaction(*connection_);
  {
    auto experiment = connection_->cached("SELECT 1 FROM experiments WHERE id = ?1");
    experiment->bind(1, experiment_id);
    KVSAFE_DB_CHECK(path_, experiment->step(), "register_cells: no experiment with id ", experiment_id);
  }
  auto insert_shards = [&](const std::string& cell_id, std::int64_t from, std::int64_t to) {
    auto insert = connection_->cached(
        "INSERT INTO shards(cell_id, begin, end) VALUES (?1, ?2, ?3) ON CONFLICT(cell_id, begin) DO NOTHING");
    for (std::int64_t begin = from; begin < to; begin += shard_size) {
      insert->bind(1, cell_id).bind(2, begin).bind(3, std::min(begin + shard_size, to)).run();
      result.new_shards += connection_->changes();
      insert->reset();
    }
  };
  for (const CellRecord& cell : cells) {
    KVSAFE_DB_CHECK(path_, !cell.id.empty(), "register_cells: a cell has an empty id (model ", cell.model, ")");
    KVSAFE_DB_CHECK(path_, !cell.kv_hash.empty(), "register_cells: cell ", cell.id, " has an empty kv_hash");
    KVSAFE_DB_CHECK(path_, cell.n_prompts > 0, "register_cells: cell ", cell.id, " has n_prompts ", cell.n_prompts,
                    "; a cell needs at least one prompt");
    {
      auto kv = connection_->cached(
          "INSERT INTO kv_specs(hash, canonical_json, label, effective_bits) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT(hash) DO NOTHING");
      kv->bind(1, cell.kv_hash).bind(2, cell.kv_json).bind(3, cell.kv_label).bind(4, cell.kv_effective_bits).run();
    }
    bool inserted = false;
    {
      auto insert = connection_->cached(
          "INSERT INTO cells(id, model, kv_hash, task, benchmark, canonical_json, n_prompts, created_at) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, " KVSAFE_SQL_NOW ") ON CONFLICT(id) DO NOTHING");
      insert->bind(1, cell.id).bind(2, cell.model).bind(3, cell.kv_hash).bind(4, cell.task);
      insert->bind(5, cell.benchmark).bind(6, cell.canonical_json).bind(7, cell.n_prompts).run();
      inserted = connection_->changes() == 1;
    }
    if (inserted) {
      ++result.new_cells;
      insert_shards(cell.id, 0, cell.n_prompts);
    } else {
      ++result.existing_cells;
      std::int64_t old_n_prompts = 0;
      {
        auto select = connection_->cached("SELECT n_prompts FROM cells WHERE id = ?1");
        select->bind(1, cell.id);
        KVSAFE_ASSERT(select->step(), "cell ", cell.id, " missing after a conflicting insert");
        old_n_prompts = select->column_int64(0);
      }
      if (cell.n_prompts > old_n_prompts) {
        ++result.extended_cells;
        insert_shards(cell.id, old_n_prompts, cell.n_prompts);
        auto update = connection_->cached("UPDATE cells SET n_prompts = ?2 WHERE id = ?1");
        update->bind(1, cell.id).bind(2, cell.n_prompts).run();
        refresh_cell_status(cell.id);
        spdlog::info("{}: cell {} grew from {} to {} prompts; shards added for the new range", path_.string(), cell.id,
                     old_n_prompts, cell.n_prompts);
      } else if (cell.n_prompts < old_n_prompts) {
        spdlog::info("{}: cell {} is registered with {} prompts; the grid now asks for {}, existing shards kept",
                     path_.string(), cell.id, old_n_prompts, cell.n_prompts);
      }
    }
    auto link = connection_->cached(
        "INSERT INTO experiment_cells(experiment_id, cell_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING");
    link->bind(1, experiment_id).bind(2, cell.id).run();
  }
  transaction.commit();
  spdlog::debug("{}: registered {} cells ({} new, {} existing, {} extended, {} new shards)", path_.string(),
                cells.size(), result.new_cells, result.existing_cells, result.extended_cells, result.new_shards);
  return result;
}

std::int64_t Store::record_diagnosis(const DiagnosisRecord& diagnosis) {
  require_writable("record_diagnosis");
  Transaction transaction(*connection_);
  std::string kv_hash;
  {
    auto cell = connection_->cached("SELECT kv_hash FROM cells WHERE id = ?1");
    cell->bind(1, diagnosis.cell_id);
    KVSAFE_DB_CHECK(path_, cell->step(), "record_diagnosis: the diagnosis of ", diagnosis.model, " names cell ",
                    diagnosis.cell_id, ", which is not registered");
    kv_hash = cell->column_text(0);
  }
  {
    auto layers = connection_->cached(
        "DELETE FROM pcr_layers WHERE diagnosis_id IN (SELECT id FROM diagnoses WHERE model = ?1 AND cell_id = ?2)");
    layers->bind(1, diagnosis.model).bind(2, diagnosis.cell_id).run();
    auto rows = connection_->cached("DELETE FROM diagnoses WHERE model = ?1 AND cell_id = ?2");
    rows->bind(1, diagnosis.model).bind(2, diagnosis.cell_id).run();
  }
  const auto json_or_empty = [](const std::string& text) { return text.empty() ? std::string("{}") : text; };
  auto insert = connection_->cached(
      "INSERT INTO diagnoses(cell_id, model, kv_hash, mode, pcr, scores_json, thresholds_json, "
      "recommended_spec_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, " KVSAFE_SQL_NOW ")");
  insert->bind(1, diagnosis.cell_id).bind(2, diagnosis.model).bind(3, kv_hash).bind(4, diagnosis.mode);
  insert->bind(5, diagnosis.pcr).bind(6, json_or_empty(diagnosis.scores_json));
  insert->bind(7, json_or_empty(diagnosis.thresholds_json)).bind(8, json_or_empty(diagnosis.recommended_spec_json));
  insert->run();
  const std::int64_t id = connection_->last_insert_rowid();
  for (const DiagnosisLayerRecord& layer : diagnosis.layers) {
    auto row = connection_->cached(
        "INSERT INTO pcr_layers(diagnosis_id, layer, flip_rate, n, critical) VALUES (?1, ?2, ?3, ?4, ?5)");
    row->bind(1, id).bind(2, layer.layer).bind(3, layer.flip_rate).bind(4, layer.n).bind(5, layer.critical ? 1 : 0);
    row->run();
  }
  transaction.commit();
  return id;
}

void Store::register_diagnosis_roles(std::int64_t experiment_id, const std::vector<DiagnosisRoleRecord>& roles) {
  require_writable("register_diagnosis_roles");
  Transaction transaction(*connection_);
  // NOTE: the roles given are a model's whole diagnosis as planned now; roles an earlier plan
  // had (a grid since edited: fewer layers, other bits) would point at cells nothing runs.
  std::set<std::string> models;
  for (const DiagnosisRoleRecord& role : roles) models.insert(role.model);
  for (const std::string& model : models) {
    auto remove = connection_->cached("DELETE FROM diagnosis_roles WHERE experiment_id = ?1 AND model = ?2");
    remove->bind(1, experiment_id).bind(2, model).run();
  }
  auto upsert = connection_->cached(
      "INSERT INTO diagnosis_roles(experiment_id, model, task, arm, cell_id, detail_json, created_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, " KVSAFE_SQL_NOW
      ") ON CONFLICT(experiment_id, model, task, arm) DO UPDATE SET cell_id = excluded.cell_id, "
      "detail_json = excluded.detail_json WHERE cell_id IS NOT excluded.cell_id "
      "OR detail_json IS NOT excluded.detail_json");
  for (const DiagnosisRoleRecord& role : roles) {
    {
      auto cell = connection_->cached("SELECT 1 FROM cells WHERE id = ?1");
      cell->bind(1, role.cell_id);
      KVSAFE_DB_CHECK(path_, cell->step(), "register_diagnosis_roles: ", role.task, " ", role.arm, " of ", role.model,
                      " names cell ", role.cell_id, ", which is not registered");
    }
    upsert->bind(1, experiment_id).bind(2, role.model).bind(3, role.task).bind(4, role.arm);
    upsert->bind(5, role.cell_id).bind(6, role.detail_json.empty() ? std::string("{}") : role.detail_json).run();
    upsert->reset();
  }
  transaction.commit();
}

std::int64_t Store::begin_run(const RunRecord& run) {
  require_writable("begin_run");
  KVSAFE_DB_CHECK(path_, run.ranks >= 1, "begin_run: ranks must be >= 1, got ", run.ranks);
  const BuildInfo& build = build_info();
  std::string versions = run.versions_json;
  if (versions.empty()) {
    versions = nlohmann::json{{"kvsafe", build.version},
                              {"git_commit", build.git_commit},
                              {"compiler", build.compiler},
                              {"build_type", build.build_type},
                              {"sqlite", sqlite3_libversion()}}
                   .dump();
  }
  auto insert = connection_->cached(
      "INSERT INTO runs(experiment_id, started_at, command_line, hosts, ranks, slurm_job_id, git_commit, "
      "versions_json, status, slurm_json) VALUES (?1, " KVSAFE_SQL_NOW ", ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8)");
  insert->bind(1, run.experiment_id).bind(2, run.command_line).bind(3, nlohmann::json(run.hosts).dump());
  insert->bind(4, run.ranks).bind(5, run.slurm_job_id);
  insert->bind(6, run.git_commit.empty() ? build.git_commit : run.git_commit).bind(7, versions);
  insert->bind(8, run.slurm_json.empty() ? std::string("{}") : run.slurm_json).run();
  return connection_->last_insert_rowid();
}

void Store::end_run(std::int64_t run_id, int exit_code, const std::string& status) {
  require_writable("end_run");
  auto update =
      connection_->cached("UPDATE runs SET ended_at = " KVSAFE_SQL_NOW ", exit_code = ?2, status = ?3 WHERE id = ?1");
  update->bind(1, run_id).bind(2, exit_code).bind(3, status).run();
  KVSAFE_DB_CHECK(path_, connection_->changes() == 1, "end_run: no run with id ", run_id);
}

StatusReport Store::status_report() {
  return read_status_report(*connection_);
}

}  // namespace kvsafe::db
