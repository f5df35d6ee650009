// `kvsafe merge`: one input (attached as "src") copied into OUT ("main") in the caller's
// transaction, table by table in foreign-key order, with the integer ids remapped.
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "db/connection.h"
#include "db/db_error.h"
#include "db/merge_internal.h"
#include "db/store_internal.h"

namespace kvsafe::db::merge_detail {
namespace {

int progress_rank(std::string_view status) {
  if (status == "done") return 3;
  if (status == "failed") return 2;
  if (status == "running") return 1;
  return 0;
}

// A range condition on a shard-rows table's index for shard [?2, ?3) of cell ?1.
std::string in_shard(const ShardRowsTable& rows, std::string_view alias) {
  return fmt::format("{0}.cell_id = ?1 AND {0}.{1} >= ?2 AND {0}.{1} < ?3", alias, rows.index_column);
}

std::string key_match(const ShardRowsTable& rows, std::string_view x, std::string_view y) {
  std::string text = fmt::format("{1}.cell_id = {0}.cell_id", x, y);
  for (const std::string_view column : rows.key_columns) text += fmt::format(" AND {1}.{2} = {0}.{2}", x, y, column);
  return text;
}

void bind_shard(Statement& statement, const ShardKey& shard) {
  statement.bind(1, shard.cell_id).bind(2, shard.begin).bind(3, shard.end);
}

// Copies one input; the state it needs lives here for the length of one transaction.
class InputMerger {
 public:
  InputMerger(Connection& connection, const InputMerge& input, ShardOrigins& origins, MergeResult& result)
      : c_(connection), input_(input), origins_(origins), result_(result) {}

  MergeCounts run() {
    experiments();
    models();
    copy_keyed("kv_specs", "hash");
    copy_keyed("benchmarks", "name");
    copy_keyed("prompts", "benchmark, prompt_index");
    cells();
    experiment_cells();
    runs();
    shards();
    metrics();
    judgements();
    diagnoses();
    diagnosis_roles();
    refresh_cells();
    return counts_;
  }

 private:
  void note(std::string text) { result_.notes.push_back(std::move(text)); }

  // INSERT ... SELECT of every column but `except`, keeping OUT's row on a key conflict.
  std::int64_t copy_keyed(std::string_view table, std::string_view key,
                          const std::set<std::string, std::less<>>& except = {}) {
    const std::string columns = join_columns(table_columns(c_, "main", table, except));
    c_.exec(fmt::format("INSERT INTO main.{0}({1}) SELECT {1} FROM src.{0} WHERE true ON CONFLICT({2}) DO NOTHING",
                        table, columns, key));
    return c_.changes();
  }

  void experiments() {
    {
      Statement edited(c_,
                       "SELECT s.name FROM src.experiments s JOIN main.experiments m ON m.name = s.name "
                       "WHERE s.grid_sha256 <> m.grid_sha256 ORDER BY s.name");
      while (edited.step()) {
        note(fmt::format("experiment '{}': {} ran another grid text; {}'s is kept", edited.column_text(0),
                         input_.input_display, input_.out_display));
      }
    }
    counts_.experiments_copied = copy_keyed("experiments", "name", {"id"});
    c_.exec(
        "CREATE TEMP TABLE IF NOT EXISTS merge_experiment_map (src_id INTEGER PRIMARY KEY, out_id INTEGER NOT NULL);"
        "DELETE FROM temp.merge_experiment_map;"
        "INSERT INTO temp.merge_experiment_map SELECT s.id, m.id FROM src.experiments s "
        "JOIN main.experiments m ON m.name = s.name");
  }

  void models() {
    {
      Statement differ(c_,
                       "SELECT s.name FROM src.models s JOIN main.models m ON m.name = s.name "
                       "WHERE s.sha256 <> '' AND m.sha256 <> '' AND s.sha256 <> m.sha256 ORDER BY s.name");
      while (differ.step()) {
        note(fmt::format("model '{}': {} loaded other weights (another sha256); {}'s record is kept",
                         differ.column_text(0), input_.input_display, input_.out_display));
      }
    }
    // NOTE: as Store::register_model: an empty text (n_params 0) is "not known", so the input
    // fills what OUT does not know and never overwrites what it does.
    const std::string columns = join_columns(table_columns(c_, "main", "models", {"id"}));
    c_.exec(fmt::format(
        "INSERT INTO main.models({0}) SELECT {0} FROM src.models WHERE true ON CONFLICT(name) DO UPDATE SET "
        "sha256 = CASE WHEN models.sha256 = '' THEN excluded.sha256 ELSE models.sha256 END, "
        "architecture = CASE WHEN models.architecture = '' THEN excluded.architecture ELSE models.architecture END, "
        "n_params = CASE WHEN models.n_params = 0 THEN excluded.n_params ELSE models.n_params END, "
        "chat_template = CASE WHEN models.chat_template = '' THEN excluded.chat_template ELSE models.chat_template "
        "END, "
        "chat_template_sha256 = CASE WHEN models.chat_template_sha256 = '' THEN excluded.chat_template_sha256 "
        "ELSE models.chat_template_sha256 END "
        "WHERE (models.sha256 = '' AND excluded.sha256 <> '') OR (models.architecture = '' AND "
        "excluded.architecture <> '') OR (models.n_params = 0 AND excluded.n_params <> 0) OR "
        "(models.chat_template = '' AND excluded.chat_template <> '') OR (models.chat_template_sha256 = '' AND "
        "excluded.chat_template_sha256 <> '')",
        columns));
  }

  void cells() {
    counts_.cells_present =
        c_.query_int64("SELECT COUNT(*) FROM src.cells s WHERE s.id IN (SELECT id FROM main.cells)");
    counts_.cells_copied = copy_keyed("cells", "id");
    // A grid edited to a bigger limit between jobs: OUT's cell covers the input's prompts too
    // (their shards come with the shards below), as Store::register_cells extends a cell.
    c_.exec(
        "UPDATE main.cells SET n_prompts = (SELECT s.n_prompts FROM src.cells s WHERE s.id = main.cells.id) "
        "WHERE id IN (SELECT s.id FROM src.cells s JOIN main.cells m ON m.id = s.id WHERE s.n_prompts > m.n_prompts)");
  }

  void experiment_cells() {
    c_.exec(
        "INSERT INTO main.experiment_cells(experiment_id, cell_id) SELECT map.out_id, e.cell_id "
        "FROM src.experiment_cells e JOIN temp.merge_experiment_map map ON map.src_id = e.experiment_id "
        "WHERE true ON CONFLICT DO NOTHING");
  }

  // A run is the same launch when its start, command line, hosts and SLURM job are; one that
  // OUT saw still running (an input merged before it ended) takes the input's end.
  void runs() {
    const std::set<std::string, std::less<>> identity = {"id",           "experiment_id", "started_at",
                                                         "command_line", "hosts",         "slurm_job_id"};
    const std::vector<std::string> mutable_columns = table_columns(c_, "main", "runs", identity);
    const std::vector<std::string> columns = table_columns(c_, "main", "runs", {"id", "experiment_id"});
    std::vector<std::pair<std::int64_t, std::optional<std::int64_t>>> runs;  // src id, OUT id
    {
      Statement select(c_,
                       "SELECT s.id, (SELECT m.id FROM main.runs m WHERE m.started_at = s.started_at AND "
                       "m.command_line = s.command_line AND m.hosts = s.hosts AND m.slurm_job_id = s.slurm_job_id "
                       "ORDER BY m.id LIMIT 1) FROM src.runs s ORDER BY s.id");
      while (select.step()) runs.emplace_back(select.column_int64(0), select.column_optional_int64(1));
    }
    Statement insert(c_, fmt::format("INSERT INTO main.runs(experiment_id, {0}) SELECT (SELECT out_id FROM "
                                     "temp.merge_experiment_map WHERE src_id = s.experiment_id), {1} FROM src.runs s "
                                     "WHERE s.id = ?1",
                                     join_columns(columns), join_columns(columns, "s.")));
    Statement finish(c_, fmt::format("UPDATE main.runs SET ({0}) = (SELECT {0} FROM src.runs WHERE id = ?2) "
                                     "WHERE id = ?1 AND ended_at IS NULL AND "
                                     "(SELECT ended_at FROM src.runs WHERE id = ?2) IS NOT NULL",
                                     join_columns(mutable_columns)));
    for (const auto& [src_id, out_id] : runs) {
      if (out_id.has_value()) {
        finish.bind(1, *out_id).bind(2, src_id).run();
        finish.reset();
      } else {
        insert.bind(1, src_id).run();
        insert.reset();
        ++counts_.runs_copied;
      }
    }
  }

  // Deletes OUT's rows of the shard (and the judgements of its generations) and copies the
  // input's; returns the generations copied.
  std::int64_t copy_shard_rows(const ShardKey& shard) {
    Statement& judged = statements_.get(
        "DELETE FROM main.judgements WHERE generation_id IN (SELECT g.id FROM main.generations g "
        "WHERE g.cell_id = ?1 AND g.prompt_index >= ?2 AND g.prompt_index < ?3)");
    bind_shard(judged, shard);
    judged.run();
    std::int64_t generations = 0;
    for (const ShardRowsTable& rows : shard_rows_tables()) {
      Statement& remove =
          statements_.get(fmt::format("DELETE FROM main.{} WHERE {}", rows.table, in_shard(rows, rows.table)));
      bind_shard(remove, shard);
      remove.run();
      Statement& copy = statements_.get(fmt::format("INSERT INTO main.{0}({1}) SELECT {1} FROM src.{0} AS r WHERE {2}",
                                                    rows.table, columns(rows.table, {"id"}), in_shard(rows, "r")));
      bind_shard(copy, shard);
      copy.run();
      if (rows.table == "generations") generations = c_.changes();
    }
    return generations;
  }

  // OUT's shard row becomes the input's (status, attempts, error, worker, times).
  void copy_shard_row(const ShardKey& shard) {
    Statement& remove = statements_.get("DELETE FROM main.shards WHERE cell_id = ?1 AND begin = ?2");
    remove.bind(1, shard.cell_id).bind(2, shard.begin).run();
    Statement& copy = statements_.get(
        fmt::format("INSERT INTO main.shards({0}) SELECT {0} FROM src.shards WHERE cell_id = ?1 AND begin = ?2",
                    columns("shards")));
    copy.bind(1, shard.cell_id).bind(2, shard.begin).run();
  }

  void take_done_shard(const ShardKey& shard) {
    copy_shard_row(shard);
    counts_.generations_copied += copy_shard_rows(shard);
    origins_[shard] = shard_provenance(statements_, "src", input_.input_display, shard);
  }

  void shards() {
    struct Pair {
      ShardKey shard;
      std::string status;                       // the input's
      std::optional<std::string> out_status{};  // OUT's; empty: OUT has no shard there
    };
    std::vector<Pair> pairs;
    {
      Statement select(c_,
                       "SELECT s.cell_id, s.begin, s.end, s.status, m.status FROM src.shards s "
                       "LEFT JOIN main.shards m ON m.cell_id = s.cell_id AND m.begin = s.begin ORDER BY 1, 2");
      while (select.step()) {
        Pair pair{
            .shard = {.cell_id = select.column_text(0), .begin = select.column_int64(1), .end = select.column_int64(2)},
            .status = select.column_text(3)};
        if (!select.column_is_null(4)) pair.out_status = select.column_text(4);
        pairs.push_back(std::move(pair));
      }
    }
    for (const Pair& pair : pairs) {
      if (pair.status != "done") {
        ++counts_.shards_not_done;
        if (!pair.out_status.has_value() ||
            (*pair.out_status != "done" && progress_rank(pair.status) > progress_rank(*pair.out_status))) {
          copy_shard_row(pair.shard);
        }
      } else if (!pair.out_status.has_value() || *pair.out_status != "done") {
        take_done_shard(pair.shard);
        ++counts_.shards_copied;
      } else {
        both_done(pair.shard);
      }
    }
  }

  void both_done(const ShardKey& shard) {
    const ShardDifference difference = shard_difference(statements_, "main", "src", shard);
    if (difference.empty()) {
      ++counts_.shards_identical;
      Statement& count = statements_.get(
          "SELECT COUNT(*) FROM src.generations WHERE cell_id = ?1 AND prompt_index >= ?2 AND prompt_index < ?3");
      bind_shard(count, shard);
      if (count.step()) counts_.generations_identical += count.column_int64(0);
      return;
    }
    // NOTE: merge_databases compared every pair before writing; without --prefer a conflict
    // here would mean that check and this copy disagree.
    KVSAFE_ASSERT(input_.prefer != Prefer::kNone, "conflict on shard [", shard.begin, ", ", shard.end, ") of cell ",
                  shard.cell_id, " was not found before writing");
    ++counts_.shards_conflicting;
    MergeConflict conflict{
        .shard = shard,
        .incoming = shard_provenance(statements_, "src", input_.input_display, shard),
        .differing_prompts = std::vector<std::int64_t>(difference.prompts.begin(), difference.prompts.end()),
        .direction_sums_differ = difference.direction_sums,
        .resolution = ConflictResolution::kKeptExisting};
    conflict.existing = shard_provenance(statements_, "main", input_.out_display, shard);
    if (const auto origin = origins_.find(shard); origin != origins_.end()) {
      // NOTE: copied from an earlier input of this merge: its run is that input's.
      conflict.existing = origin->second;
      conflict.existing.merged_from = conflict.existing.database;
      conflict.existing.database = input_.out_display;
    }
    if (input_.prefer == Prefer::kNewest && newest_key(conflict.incoming) > newest_key(conflict.existing)) {
      take_done_shard(shard);
      ++counts_.shards_replaced;
      conflict.resolution = ConflictResolution::kTookIncoming;
    }
    result_.conflicts.push_back(std::move(conflict));
  }

  void metrics() {
    {
      Statement differ(c_,
                       "SELECT s.cell_id, s.name FROM src.metrics s JOIN main.metrics m ON m.cell_id = s.cell_id "
                       "AND m.name = s.name WHERE s.value IS NOT m.value OR s.ci_low IS NOT m.ci_low OR "
                       "s.ci_high IS NOT m.ci_high OR s.n IS NOT m.n ORDER BY 1, 2");
      while (differ.step()) {
        note(fmt::format("metric {} of cell {} differs in {}; {}'s is kept", differ.column_text(1),
                         differ.column_text(0), input_.input_display, input_.out_display));
      }
    }
    copy_keyed("metrics", "cell_id, name", {"id"});
  }

  // A verdict judges an answer: it is copied wherever OUT holds the same answer to the prompt.
  void judgements() {
    const std::vector<std::string> columns = table_columns(c_, "main", "judgements", {"id", "generation_id"});
    c_.exec(fmt::format(
        "INSERT INTO main.judgements(generation_id, {0}) SELECT gm.id, {1} FROM src.judgements j "
        "JOIN src.generations gs ON gs.id = j.generation_id JOIN main.generations gm ON gm.cell_id = gs.cell_id AND "
        "gm.prompt_index = gs.prompt_index WHERE gm.output_text = gs.output_text "
        "ON CONFLICT(generation_id, judge_key) DO NOTHING",
        join_columns(columns), join_columns(columns, "j.")));
    counts_.judgements_copied = c_.changes();
  }

  // One diagnosis per (model, cell): OUT's is kept, the input's copied (with its layers and
  // channels) where OUT has none.
  void diagnoses() {
    std::vector<std::pair<std::int64_t, std::optional<std::int64_t>>> diagnoses;  // src id, OUT id
    {
      Statement select(c_,
                       "SELECT s.id, (SELECT m.id FROM main.diagnoses m WHERE m.model = s.model AND "
                       "m.cell_id IS s.cell_id ORDER BY m.id DESC LIMIT 1) FROM src.diagnoses s ORDER BY s.id");
      while (select.step()) diagnoses.emplace_back(select.column_int64(0), select.column_optional_int64(1));
    }
    const std::string columns = join_columns(table_columns(c_, "main", "diagnoses", {"id"}));
    const std::string layer_columns = join_columns(table_columns(c_, "main", "pcr_layers", {"diagnosis_id"}));
    const std::string channel_columns = join_columns(table_columns(c_, "main", "pcr_channels", {"diagnosis_id"}));
    for (const auto& [src_id, out_id] : diagnoses) {
      if (out_id.has_value()) {
        Statement differ(
            c_,
            "SELECT s.model FROM src.diagnoses s, main.diagnoses m WHERE s.id = ?1 AND m.id = ?2 AND "
            "(s.mode IS NOT m.mode OR s.pcr IS NOT m.pcr OR s.scores_json IS NOT m.scores_json OR "
            "s.thresholds_json IS NOT m.thresholds_json OR s.recommended_spec_json IS NOT m.recommended_spec_json)");
        differ.bind(1, src_id).bind(2, *out_id);
        if (differ.step()) {
          note(fmt::format("the diagnosis of {} differs in {}; {}'s is kept", differ.column_text(0),
                           input_.input_display, input_.out_display));
        }
        continue;
      }
      Statement insert(
          c_, fmt::format("INSERT INTO main.diagnoses({0}) SELECT {0} FROM src.diagnoses WHERE id = ?1", columns));
      insert.bind(1, src_id).run();
      const std::int64_t new_id = c_.last_insert_rowid();
      for (const auto& [table, table_columns_text] :
           {std::pair{"pcr_layers", &layer_columns}, std::pair{"pcr_channels", &channel_columns}}) {
        Statement rows(c_, fmt::format("INSERT INTO main.{0}(diagnosis_id, {1}) SELECT ?1, {1} FROM src.{0} "
                                       "WHERE diagnosis_id = ?2",
                                       table, *table_columns_text));
        rows.bind(1, new_id).bind(2, src_id).run();
      }
      ++counts_.diagnoses_copied;
    }
  }

  void diagnosis_roles() {
    {
      Statement differ(c_,
                       "SELECT s.model, s.task, s.arm FROM src.diagnosis_roles s JOIN temp.merge_experiment_map map "
                       "ON map.src_id = s.experiment_id JOIN main.diagnosis_roles m ON m.experiment_id = map.out_id "
                       "AND m.model = s.model AND m.task = s.task AND m.arm = s.arm "
                       "WHERE m.cell_id <> s.cell_id OR m.detail_json <> s.detail_json ORDER BY 1, 2, 3");
      while (differ.step()) {
        note(fmt::format("diagnosis role {} {} of {} names another cell in {}; {}'s is kept", differ.column_text(1),
                         differ.column_text(2), differ.column_text(0), input_.input_display, input_.out_display));
      }
    }
    const std::vector<std::string> columns = table_columns(c_, "main", "diagnosis_roles", {"experiment_id"});
    c_.exec(fmt::format(
        "INSERT INTO main.diagnosis_roles(experiment_id, {0}) SELECT map.out_id, {1} FROM src.diagnosis_roles r "
        "JOIN temp.merge_experiment_map map ON map.src_id = r.experiment_id WHERE true "
        "ON CONFLICT(experiment_id, model, task, arm) DO NOTHING",
        join_columns(columns), join_columns(columns, "r.")));
  }

  // Each cell the input has, as its shards in OUT now make it (cell_status_of_shards, the
  // store's rule).
  void refresh_cells() {
    std::vector<std::string> cells;
    {
      Statement select(c_, "SELECT id FROM src.cells ORDER BY id");
      while (select.step()) cells.push_back(select.column_text(0));
    }
    Statement counts(c_,
                     "SELECT COUNT(*), TOTAL(status = 'running'), TOTAL(status = 'done'), TOTAL(status = 'failed'), "
                     "IFNULL(MAX(attempts), 0), MIN(started_at), "
                     "MAX(CASE WHEN status IN ('done', 'failed') THEN finished_at END) FROM main.shards "
                     "WHERE cell_id = ?1");
    Statement failed(c_,
                     "SELECT begin, end, attempts, IFNULL(error, '') FROM main.shards WHERE cell_id = ?1 AND "
                     "status = 'failed' ORDER BY begin LIMIT 1");
    Statement update(c_,
                     "UPDATE main.cells SET status = ?2, attempts = ?3, "
                     "started_at = CASE WHEN ?2 = 'pending' THEN started_at "
                     "  ELSE COALESCE(MIN(started_at, IFNULL((SELECT started_at FROM src.cells WHERE id = ?1), "
                     "started_at)), (SELECT started_at FROM src.cells WHERE id = ?1), ?4, " KVSAFE_SQL_NOW
                     ") END, "
                     "finished_at = CASE WHEN ?2 IN ('done', 'failed') THEN COALESCE(?5, finished_at, " KVSAFE_SQL_NOW
                     ") ELSE NULL END, "
                     "error = CASE WHEN ?2 <> 'failed' THEN NULL "
                     "  WHEN status = 'failed' AND error IS NOT NULL THEN error "
                     "  ELSE COALESCE((SELECT error FROM src.cells WHERE id = ?1 AND status = 'failed'), ?6) END "
                     "WHERE id = ?1");
    for (const std::string& cell : cells) {
      counts.bind(1, cell);
      KVSAFE_ASSERT(counts.step(), "aggregate query returned no row");
      const std::int64_t total = counts.column_int64(0);
      const std::int64_t running = counts.column_int64(1);
      const std::int64_t done = counts.column_int64(2);
      const std::int64_t failures = counts.column_int64(3);
      const std::int64_t attempts = counts.column_int64(4);
      const std::optional<std::string> started =
          counts.column_is_null(5) ? std::nullopt : std::optional(counts.column_text(5));
      const std::optional<std::string> finished =
          counts.column_is_null(6) ? std::nullopt : std::optional(counts.column_text(6));
      counts.reset();
      const CellStatus status = cell_status_of_shards(total, running, done, failures);
      std::optional<std::string> error;
      if (status == CellStatus::kFailed) {
        failed.bind(1, cell);
        if (failed.step()) {
          error = fmt::format("shard [{}, {}) failed after {} attempts: {}", failed.column_int64(0),
                              failed.column_int64(1), failed.column_int64(2), failed.column_text(3));
        }
        failed.reset();
      }
      update.bind(1, cell)
          .bind(2, to_string(status))
          .bind(3, attempts)
          .bind(4, started)
          .bind(5, finished)
          .bind(6, error);
      update.run();
      update.reset();
    }
  }

  // The columns of OUT's `table` but `except`, quoted and joined (computed once per table).
  const std::string& columns(std::string_view table, const std::set<std::string, std::less<>>& except = {}) {
    std::string key(table);
    for (const std::string& column : except) key += " -" + column;
    auto it = columns_.find(key);
    if (it == columns_.end()) it = columns_.emplace(key, join_columns(table_columns(c_, "main", table, except))).first;
    return it->second;
  }

  Connection& c_;
  StatementCache statements_{c_};
  std::map<std::string, std::string, std::less<>> columns_;
  const InputMerge& input_;
  ShardOrigins& origins_;
  MergeResult& result_;
  MergeCounts counts_;
};

}  // namespace

const std::vector<ShardRowsTable>& shard_rows_tables() {
  static const std::vector<ShardRowsTable> tables = {
      {.table = "generations",
       .index_column = "prompt_index",
       .key_columns = {"prompt_index"},
       .value_columns = {"output_text", "refused"}},
      {.table = "ppl_windows",
       .index_column = "window_index",
       .key_columns = {"window_index"},
       .value_columns = {"begin_token", "n_tokens", "nll_sum"}},
      {.table = "key_magnitudes",
       .index_column = "prompt_index",
       .key_columns = {"prompt_index", "layer"},
       .value_columns = {"tokens", "max_abs_json"}},
      {.table = "direction_sums",
       .index_column = "shard_begin",
       .key_columns = {"shard_begin", "layer", "harmful"},
       .value_columns = {"prompts", "sum_f32"},
       .per_prompt = false},
      {.table = "ifeval_verdicts",
       .index_column = "prompt_index",
       .key_columns = {"prompt_index", "instruction_index"},
       .value_columns = {"instruction_id", "strict", "loose"}},
  };
  return tables;
}

ShardDifference shard_difference(StatementCache& statements, std::string_view a, std::string_view b,
                                 const ShardKey& shard) {
  ShardDifference difference;
  for (const ShardRowsTable& rows : shard_rows_tables()) {
    std::string same = key_match(rows, "x", "y");
    for (const std::string_view column : rows.value_columns) same += fmt::format(" AND y.{0} IS x.{0}", column);
    // Rows of `a` without an equal row in `b`, and rows of `b` whose key `a` lacks.
    Statement& select =
        statements.get(fmt::format("SELECT x.{2} FROM {0}.{3} x WHERE {4} AND NOT EXISTS (SELECT 1 FROM {1}.{3} y "
                                   "WHERE {5}) UNION SELECT y.{2} FROM {1}.{3} y WHERE {6} AND NOT EXISTS "
                                   "(SELECT 1 FROM {0}.{3} x WHERE {7})",
                                   a, b, rows.index_column, rows.table, in_shard(rows, "x"), same, in_shard(rows, "y"),
                                   key_match(rows, "x", "y")));
    bind_shard(select, shard);
    while (select.step()) {
      if (rows.per_prompt) {
        difference.prompts.insert(select.column_int64(0));
      } else {
        difference.direction_sums = true;
      }
    }
  }
  return difference;
}

ShardProvenance shard_provenance(StatementCache& statements, std::string_view schema, const std::string& display,
                                 const ShardKey& shard) {
  ShardProvenance provenance{.database = display};
  {
    Statement& select =
        statements.get(fmt::format("SELECT IFNULL(worker, ''), IFNULL(finished_at, '') FROM {}.shards "
                                   "WHERE cell_id = ?1 AND begin = ?2",
                                   schema));
    select.bind(1, shard.cell_id).bind(2, shard.begin);
    if (!select.step()) return provenance;
    provenance.worker = select.column_text(0);
    provenance.finished_at = select.column_text(1);
    select.reset();
  }
  if (provenance.finished_at.empty()) return provenance;
  // NOTE: one writer at a time per database (the writer lock), so the run that committed the
  // shard is the latest one started before the commit and not ended before it; after merges,
  // runs of several clusters can overlap in time, and the worker's host picks among them.
  const std::size_t at = provenance.worker.find('@');
  const std::string host = at == std::string::npos ? "" : "\"" + provenance.worker.substr(at + 1) + "\"";
  Statement& run =
      statements.get(fmt::format("SELECT id, started_at, slurm_job_id FROM {}.runs WHERE started_at <= ?1 AND "
                                 "(ended_at IS NULL OR ended_at >= ?1) "
                                 "ORDER BY (?2 <> '' AND instr(hosts, ?2) > 0) DESC, started_at DESC, id DESC "
                                 "LIMIT 1",
                                 schema));
  run.bind(1, provenance.finished_at).bind(2, host);
  if (run.step()) {
    provenance.run_id = run.column_int64(0);
    provenance.run_started_at = run.column_text(1);
    provenance.slurm_job_id = run.column_text(2);
  }
  run.reset();
  return provenance;
}

StatementCache::StatementCache(Connection& connection) : connection_(connection) {}

StatementCache::~StatementCache() = default;

Statement& StatementCache::get(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    it = statements_.emplace(sql, std::make_unique<Statement>(connection_, sql)).first;
  } else {
    it->second->reset();
  }
  return *it->second;
}

std::string newest_key(const ShardProvenance& provenance) {
  return provenance.run_id.has_value() ? provenance.run_started_at : provenance.finished_at;
}

std::vector<std::string> table_columns(Connection& connection, std::string_view schema, std::string_view table,
                                       const std::set<std::string, std::less<>>& except) {
  std::vector<std::string> columns;
  Statement select(connection, "SELECT name FROM pragma_table_info(?1, ?2) ORDER BY cid");
  select.bind(1, table).bind(2, schema);
  while (select.step()) {
    std::string name = select.column_text(0);
    if (!except.contains(name)) columns.push_back(std::move(name));
  }
  KVSAFE_ASSERT(!columns.empty(), "table ", schema, ".", table, " has no columns");
  return columns;
}

std::string join_columns(const std::vector<std::string>& columns, std::string_view prefix) {
  std::string text;
  for (const std::string& column : columns) {
    if (!text.empty()) text += ", ";
    text += fmt::format("{}\"{}\"", prefix, column);
  }
  return text;
}

MergeCounts merge_attached_input(Connection& connection, const InputMerge& input, ShardOrigins& origins,
                                 MergeResult& result) {
  return InputMerger(connection, input, origins, result).run();
}

}  // namespace kvsafe::db::merge_detail
