// Store: the shard state machine (claim, commit, fail, requeue) and the cell status that
// follows from its shards.
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "db/connection.h"
#include "db/store.h"
#include "db/store_internal.h"

namespace kvsafe::db {
namespace {

struct ShardRow {
  std::int64_t end = 0;
  ShardStatus status = ShardStatus::kPending;
  std::int64_t attempts = 0;
};

std::optional<ShardRow> find_shard(Connection& connection, const ShardKey& shard) {
  auto select = connection.cached("SELECT end, status, attempts FROM shards WHERE cell_id = ?1 AND begin = ?2");
  select->bind(1, shard.cell_id).bind(2, shard.begin);
  if (!select->step()) return std::nullopt;
  return ShardRow{.end = select->column_int64(0),
                  .status = stored_shard_status(select->column_text(1)),
                  .attempts = select->column_int64(2)};
}

std::string describe(const ShardKey& shard) {
  return kvsafe::detail::concat("shard [", shard.begin, ", ", shard.end, ") of cell ", shard.cell_id);
}

// key_magnitudes.max_abs_json: a float widened to double dumps in its shortest round-trip
// form, so every float32 reads back exactly.
std::string max_abs_json(const std::vector<float>& max_abs) {
  nlohmann::json values = nlohmann::json::array();
  for (const float value : max_abs) values.push_back(static_cast<double>(value));
  return values.dump();
}

// direction_sums.sum_f32: the floats' bytes, little-endian.
std::vector<std::byte> float_bytes_le(const std::vector<float>& values) {
  static_assert(std::endian::native == std::endian::little, "direction_sums.sum_f32 is little-endian");
  std::vector<std::byte> bytes(values.size() * sizeof(float));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

}  // namespace

// A cell's status follows from its shards (cell_status_of_shards); attempts = their maximum.
void Store::refresh_cell_status(const std::string& cell_id) {
  std::int64_t total = 0, running = 0, done = 0, failed = 0, attempts = 0;
  {
    auto counts = connection_->cached(
        "SELECT COUNT(*), TOTAL(status = 'running'), TOTAL(status = 'done'), TOTAL(status = 'failed'), "
        "IFNULL(MAX(attempts), 0) FROM shards WHERE cell_id = ?1");
    counts->bind(1, cell_id);
    KVSAFE_ASSERT(counts->step(), "aggregate query returned no row");
    total = counts->column_int64(0);
    running = counts->column_int64(1);
    done = counts->column_int64(2);
    failed = counts->column_int64(3);
    attempts = counts->column_int64(4);
  }
  const CellStatus status = cell_status_of_shards(total, running, done, failed);
  auto update = connection_->cached(
      "UPDATE cells SET attempts = ?3, "
      "started_at = CASE WHEN ?2 = 'pending' THEN started_at ELSE IFNULL(started_at, " KVSAFE_SQL_NOW
      ") END, "
      "finished_at = CASE WHEN ?2 = status THEN finished_at "
      "  WHEN ?2 IN ('done', 'failed') THEN " KVSAFE_SQL_NOW
      " ELSE NULL END, "
      "error = CASE WHEN ?2 = 'failed' THEN error ELSE NULL END, "
      "status = ?2 WHERE id = ?1");
  update->bind(1, cell_id).bind(2, to_string(status)).bind(3, attempts).run();
}

bool Store::claim_shard(const ShardKey& shard, const std::string& worker) {
  require_writable("claim_shard");
  Transaction transaction(*connection_);
  {
    auto claim = connection_->cached(
        "UPDATE shards SET status = 'running', attempts = attempts + 1, worker = ?3, "
        "started_at = " KVSAFE_SQL_NOW
        ", finished_at = NULL "
        "WHERE cell_id = ?1 AND begin = ?2 AND status = 'pending'");
    claim->bind(1, shard.cell_id).bind(2, shard.begin).bind(3, worker).run();
  }
  if (connection_->changes() == 0) {
    KVSAFE_DB_CHECK(path_, find_shard(*connection_, shard).has_value(), "claim_shard: no ", describe(shard));
    return false;
  }
  refresh_cell_status(shard.cell_id);
  transaction.commit();
  return true;
}

void Store::commit_shard(const ShardResult& result) {
  require_writable("commit_shard");
  const ShardKey& shard = result.shard;
  Transaction transaction(*connection_);
  const std::optional<ShardRow> row = find_shard(*connection_, shard);
  KVSAFE_DB_CHECK(path_, row.has_value(), "commit_shard: no ", describe(shard));
  KVSAFE_DB_CHECK(path_, row->end == shard.end, "commit_shard: ", describe(shard), " is recorded as ending at ",
                  row->end);
  if (row->status == ShardStatus::kDone) {
    spdlog::debug("{}: {} was already committed; the duplicate changes nothing", path_.string(), describe(shard));
    return;  // the transaction rolls back: nothing was written
  }
  for (const GenerationRow& generation : result.generations) {
    // NOTE: checked here rather than by a constraint: the range lives in another table.
    KVSAFE_DB_CHECK(path_, generation.prompt_index >= shard.begin && generation.prompt_index < shard.end,
                    "commit_shard: generation for prompt ", generation.prompt_index, " lies outside ", describe(shard));
    auto insert = connection_->cached(
        "INSERT INTO generations(cell_id, prompt_index, prompt_id, prompt_sha256, rendered_sha256, output_text, "
        "prompt_tokens, output_tokens, refused, judge_json, seconds, first_token_id, reference_first_token_id, "
        "first_token_kl, kv_mse_key, kv_mse_value) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) "
        "ON CONFLICT(cell_id, prompt_index) DO NOTHING");
    insert->bind(1, shard.cell_id).bind(2, generation.prompt_index).bind(3, generation.prompt_id);
    insert->bind(4, generation.prompt_sha256).bind(5, generation.rendered_sha256).bind(6, generation.output_text);
    insert->bind(7, generation.prompt_tokens).bind(8, generation.output_tokens);
    if (generation.refused.has_value()) {
      insert->bind(9, *generation.refused ? 1 : 0);
    } else {
      insert->bind_null(9);
    }
    if (generation.judge_json.empty()) {
      insert->bind_null(10);
    } else {
      insert->bind(10, generation.judge_json);
    }
    insert->bind(11, generation.seconds).bind(12, generation.first_token_id);
    insert->bind(13, generation.reference_first_token_id).bind(14, generation.first_token_kl);
    insert->bind(15, generation.kv_mse_key).bind(16, generation.kv_mse_value).run();
  }
  for (const PplWindowRow& window : result.ppl_windows) {
    KVSAFE_DB_CHECK(path_, window.window_index >= shard.begin && window.window_index < shard.end,
                    "commit_shard: perplexity window ", window.window_index, " lies outside ", describe(shard));
    auto insert = connection_->cached(
        "INSERT INTO ppl_windows(cell_id, window_index, begin_token, n_tokens, nll_sum) "
        "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(cell_id, window_index) DO NOTHING");
    insert->bind(1, shard.cell_id).bind(2, window.window_index).bind(3, window.begin_token);
    insert->bind(4, window.n_tokens).bind(5, window.nll_sum).run();
  }
  for (const KeyMagnitudeRow& magnitudes : result.key_magnitudes) {
    KVSAFE_DB_CHECK(path_, magnitudes.prompt_index >= shard.begin && magnitudes.prompt_index < shard.end,
                    "commit_shard: key magnitudes of prompt ", magnitudes.prompt_index, " lie outside ",
                    describe(shard));
    KVSAFE_DB_CHECK(path_, !magnitudes.max_abs.empty(), "commit_shard: key magnitudes of prompt ",
                    magnitudes.prompt_index, " at layer ", magnitudes.layer, " have no channel (", describe(shard),
                    ")");
    // NOTE: JSON has no NaN or infinity (they would be written as null and never read back).
    KVSAFE_DB_CHECK(path_,
                    std::all_of(magnitudes.max_abs.begin(), magnitudes.max_abs.end(),
                                [](float value) { return std::isfinite(value); }),
                    "commit_shard: key magnitudes of prompt ", magnitudes.prompt_index, " at layer ", magnitudes.layer,
                    " are not all finite (", describe(shard), ")");
    auto insert = connection_->cached(
        "INSERT INTO key_magnitudes(cell_id, prompt_index, layer, tokens, max_abs_json) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT(cell_id, prompt_index, layer) DO NOTHING");
    insert->bind(1, shard.cell_id).bind(2, magnitudes.prompt_index).bind(3, magnitudes.layer);
    insert->bind(4, magnitudes.tokens).bind(5, max_abs_json(magnitudes.max_abs)).run();
  }
  for (const DirectionSumRow& sums : result.direction_sums) {
    const std::string what = kvsafe::detail::concat("commit_shard: the ", sums.harmful ? "harmful" : "harmless",
                                                    " residual sum at layer ", sums.layer, " (", describe(shard), ")");
    KVSAFE_DB_CHECK(path_, sums.prompts > 0 && sums.prompts <= shard.end - shard.begin, what, " counts ", sums.prompts,
                    " prompts");
    KVSAFE_DB_CHECK(path_, !sums.sum.empty(), what, " is empty");
    KVSAFE_DB_CHECK(path_,
                    std::all_of(sums.sum.begin(), sums.sum.end(), [](float value) { return std::isfinite(value); }),
                    what, " is not all finite");
    auto insert = connection_->cached(
        "INSERT INTO direction_sums(cell_id, shard_begin, layer, harmful, prompts, sum_f32) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(cell_id, shard_begin, layer, harmful) DO NOTHING");
    insert->bind(1, shard.cell_id).bind(2, shard.begin).bind(3, sums.layer).bind(4, sums.harmful ? 1 : 0);
    insert->bind(5, sums.prompts).bind_blob(6, float_bytes_le(sums.sum)).run();
  }
  for (const IfevalVerdictRow& verdict : result.ifeval_verdicts) {
    KVSAFE_DB_CHECK(path_, verdict.prompt_index >= shard.begin && verdict.prompt_index < shard.end,
                    "commit_shard: IFEval verdict of prompt ", verdict.prompt_index, " lies outside ", describe(shard));
    KVSAFE_DB_CHECK(path_, verdict.strict.has_value() == verdict.loose.has_value(),
                    "commit_shard: IFEval verdict of prompt ", verdict.prompt_index, " instruction ",
                    verdict.instruction_index, " has only one of strict and loose (", describe(shard), ")");
    auto insert = connection_->cached(
        "INSERT INTO ifeval_verdicts(cell_id, prompt_index, instruction_index, instruction_id, strict, loose, "
        "unscored) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
        "ON CONFLICT(cell_id, prompt_index, instruction_index) DO NOTHING");
    insert->bind(1, shard.cell_id).bind(2, verdict.prompt_index).bind(3, verdict.instruction_index);
    insert->bind(4, verdict.instruction_id);
    if (verdict.strict.has_value()) {
      insert->bind(5, *verdict.strict ? 1 : 0).bind(6, *verdict.loose ? 1 : 0);
    } else {
      insert->bind_null(5).bind_null(6);
    }
    insert->bind(7, verdict.unscored).run();
  }
  for (const MetricRow& metric : result.metrics) {
    auto upsert = connection_->cached(
        "INSERT INTO metrics(cell_id, name, value, ci_low, ci_high, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT(cell_id, name) DO UPDATE SET value = excluded.value, ci_low = excluded.ci_low, "
        "ci_high = excluded.ci_high, n = excluded.n");
    upsert->bind(1, shard.cell_id).bind(2, metric.name).bind(3, metric.value).bind(4, metric.ci_low);
    upsert->bind(5, metric.ci_high).bind(6, metric.n).run();
  }
  {
    auto done = connection_->cached("UPDATE shards SET status = 'done', error = NULL, finished_at = " KVSAFE_SQL_NOW
                                    " WHERE cell_id = ?1 AND begin = ?2");
    done->bind(1, shard.cell_id).bind(2, shard.begin).run();
  }
  refresh_cell_status(shard.cell_id);
  transaction.commit();
}

void Store::fail_shard(const ShardKey& shard, const std::string& error, int max_attempts) {
  require_writable("fail_shard");
  Transaction transaction(*connection_);
  const std::optional<ShardRow> row = find_shard(*connection_, shard);
  KVSAFE_DB_CHECK(path_, row.has_value(), "fail_shard: no ", describe(shard));
  if (row->status == ShardStatus::kDone || row->status == ShardStatus::kFailed) {
    spdlog::warn("{}: {} is already {}; its late failure is ignored: {}", path_.string(), describe(shard),
                 to_string(row->status), error);
    return;
  }
  const bool give_up = row->attempts >= max_attempts;
  {
    auto update = connection_->cached(
        "UPDATE shards SET status = ?3, error = ?4, worker = NULL, "
        "finished_at = CASE WHEN ?3 = 'failed' THEN " KVSAFE_SQL_NOW
        " ELSE NULL END "
        "WHERE cell_id = ?1 AND begin = ?2");
    update->bind(1, shard.cell_id).bind(2, shard.begin);
    update->bind(3, to_string(give_up ? ShardStatus::kFailed : ShardStatus::kPending)).bind(4, error).run();
  }
  refresh_cell_status(shard.cell_id);
  if (give_up) {
    auto update = connection_->cached("UPDATE cells SET error = ?2 WHERE id = ?1");
    update->bind(1, shard.cell_id)
        .bind(2, kvsafe::detail::concat("shard [", shard.begin, ", ", row->end, ") failed after ", row->attempts,
                                        " attempts: ", error))
        .run();
  }
  transaction.commit();
  if (give_up) {
    spdlog::warn("{}: {} failed after {} attempts: {}", path_.string(), describe(shard), row->attempts, error);
  }
}

std::int64_t Store::requeue_in_flight() {
  require_writable("requeue_in_flight");
  Transaction transaction(*connection_);
  connection_->exec("UPDATE shards SET status = 'pending', worker = NULL, started_at = NULL WHERE status = 'running'");
  const std::int64_t requeued = connection_->changes();
  connection_->exec(
      "UPDATE cells SET status = 'pending' WHERE status = 'running' AND NOT EXISTS "
      "(SELECT 1 FROM shards WHERE shards.cell_id = cells.id AND shards.status IN ('running', 'done', 'failed'))");
  transaction.commit();
  if (requeued > 0) spdlog::info("{}: {} shards in flight put back to pending", path_.string(), requeued);
  return requeued;
}

std::int64_t Store::requeue_failed() {
  require_writable("requeue_failed");
  Transaction transaction(*connection_);
  std::vector<std::string> cells;
  {
    auto select = connection_->cached("SELECT DISTINCT cell_id FROM shards WHERE status = 'failed' ORDER BY cell_id");
    while (select->step()) cells.push_back(select->column_text(0));
  }
  // NOTE: attempts start again from 0 (the user asked for a new round of retries); the last
  // error stays on the shard until it runs again, for `kvsafe status` to show.
  connection_->exec(
      "UPDATE shards SET status = 'pending', attempts = 0, worker = NULL, started_at = NULL, finished_at = NULL "
      "WHERE status = 'failed'");
  const std::int64_t requeued = connection_->changes();
  for (const std::string& cell : cells) refresh_cell_status(cell);
  transaction.commit();
  if (requeued > 0) {
    spdlog::info("{}: {} failed shard(s) of {} cell(s) put back to pending", path_.string(), requeued, cells.size());
  }
  return requeued;
}

std::vector<ShardKey> Store::shards_with_status(ShardStatus status) {
  std::vector<ShardKey> shards;
  auto select = connection_->cached("SELECT cell_id, begin, end FROM shards WHERE status = ?1 ORDER BY cell_id, begin");
  select->bind(1, to_string(status));
  while (select->step()) {
    shards.push_back(
        ShardKey{.cell_id = select->column_text(0), .begin = select->column_int64(1), .end = select->column_int64(2)});
  }
  return shards;
}

CellStatus Store::cell_status(const std::string& cell_id) {
  auto select = connection_->cached("SELECT status FROM cells WHERE id = ?1");
  select->bind(1, cell_id);
  KVSAFE_DB_CHECK(path_, select->step(), "cell_status: no cell ", cell_id);
  const auto status = parse_shard_status(select->column_text(0));
  KVSAFE_DB_CHECK(path_, status.has_value(), "cell_status: cell ", cell_id, " has status '", select->column_text(0),
                  "'");
  return *status;
}

Progress Store::progress(std::optional<std::int64_t> experiment_id) {
  return read_progress(*connection_, experiment_id);
}

std::set<std::string> Store::done_cell_ids() {
  std::set<std::string> ids;
  auto select = connection_->cached("SELECT id FROM cells WHERE status = 'done'");
  while (select->step()) ids.insert(select->column_text(0));
  return ids;
}

}  // namespace kvsafe::db
