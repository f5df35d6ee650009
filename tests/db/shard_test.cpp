// The shard state machine: claim, commit, fail/retry, requeue, progress.
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "db/connection.h"
#include "db/db_error.h"
#include "db/store.h"
#include "tests/db/db_test_util.h"

namespace kvsafe::db {
namespace {

using testing::count_rows;
using testing::make_cell;
using testing::make_experiment;
using testing::make_result;
using testing::TempDir;

class ShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = Store::open(path_, StoreOptions{.holder_description = "shard_test"});
    experiment_ = store_->register_experiment(make_experiment("paper"));
    store_->register_cells(experiment_, {make_cell("c1", 10), make_cell("c2", 4)}, 4);
  }
  std::int64_t rows(const std::string& table_and_where) { return count_rows(path_, table_and_where); }
  // Commits `result` expecting a DbError that names `expected_text` and the shard [4, 8) of c1.
  void expect_refused(const ShardResult& result, const std::string& expected_text) {
    try {
      store_->commit_shard(result);
      ADD_FAILURE() << "committed: " << expected_text;
    } catch (const DbError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(expected_text), std::string::npos) << message;
      EXPECT_NE(message.find("shard [4, 8) of cell c1"), std::string::npos) << message;
    }
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_ / "shards.db";
  std::unique_ptr<Store> store_;
  std::int64_t experiment_ = 0;
  const ShardKey c1_0_{"c1", 0, 4};
  const ShardKey c1_4_{"c1", 4, 8};
  const ShardKey c1_8_{"c1", 8, 10};
  const ShardKey c2_0_{"c2", 0, 4};
};

TEST_F(ShardTest, PendingShardsAreOrdered) {
  EXPECT_EQ(store_->shards_with_status(ShardStatus::kPending), (std::vector<ShardKey>{c1_0_, c1_4_, c1_8_, c2_0_}));
  EXPECT_TRUE(store_->shards_with_status(ShardStatus::kRunning).empty());
}

TEST_F(ShardTest, ClaimOnlyOnce) {
  EXPECT_TRUE(store_->claim_shard(c1_0_, "rank1"));
  EXPECT_FALSE(store_->claim_shard(c1_0_, "rank2"));
  EXPECT_EQ(store_->shards_with_status(ShardStatus::kRunning), std::vector<ShardKey>{c1_0_});
  EXPECT_EQ(rows("shards WHERE cell_id = 'c1' AND begin = 0 AND worker = 'rank1' AND attempts = 1"), 1);
  EXPECT_EQ(rows("cells WHERE id = 'c1' AND status = 'running' AND started_at IS NOT NULL"), 1);
  EXPECT_THROW(store_->claim_shard(ShardKey{"nope", 0, 4}, "rank1"), DbError);
}

TEST_F(ShardTest, CommitMarksShardThenCellDone) {
  ASSERT_TRUE(store_->claim_shard(c1_0_, "w"));
  ShardResult result = make_result(c1_0_);
  result.metrics.push_back(MetricRow{.name = "refusal_rate", .value = 0.5, .ci_low = 0.2, .ci_high = 0.8, .n = 4});
  store_->commit_shard(result);
  EXPECT_EQ(rows("generations WHERE cell_id = 'c1'"), 4);
  EXPECT_EQ(rows("metrics WHERE cell_id = 'c1' AND name = 'refusal_rate' AND ci_high = 0.8"), 1);
  EXPECT_EQ(rows("cells WHERE id = 'c1' AND status = 'running'"), 1);

  for (const ShardKey& shard : {c1_4_, c1_8_}) {
    ASSERT_TRUE(store_->claim_shard(shard, "w"));
    store_->commit_shard(make_result(shard));
  }
  EXPECT_EQ(rows("cells WHERE id = 'c1' AND status = 'done' AND finished_at IS NOT NULL"), 1);
  EXPECT_EQ(store_->done_cell_ids(), std::set<std::string>{"c1"});
  EXPECT_EQ(rows("generations WHERE cell_id = 'c1' AND refused IS NOT NULL"), 10);
}

TEST_F(ShardTest, CommittingTwiceAddsNoRows) {
  ASSERT_TRUE(store_->claim_shard(c2_0_, "w"));
  store_->commit_shard(make_result(c2_0_));
  store_->commit_shard(make_result(c2_0_));
  EXPECT_EQ(rows("generations"), 4);
  EXPECT_EQ(rows("shards WHERE status = 'done'"), 1);
  EXPECT_EQ(store_->done_cell_ids(), std::set<std::string>{"c2"});
}

TEST_F(ShardTest, ConstraintViolationMidShardLeavesNoHalfShard) {
  ASSERT_TRUE(store_->claim_shard(c1_0_, "w"));
  ShardResult result = make_result(c1_0_);
  result.generations[2].output_tokens = -1;  // CHECK (output_tokens >= 0) fails on the third row
  try {
    store_->commit_shard(result);
    FAIL() << "a row violating a constraint was committed";
  } catch (const DbError& error) {
    EXPECT_NE(std::string(error.what()).find(path_.string()), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("CHECK constraint failed"), std::string::npos) << error.what();
  }
  EXPECT_EQ(rows("generations"), 0);
  EXPECT_EQ(store_->shards_with_status(ShardStatus::kRunning), std::vector<ShardKey>{c1_0_});

  // A row outside the shard's range is refused the same way.
  result = make_result(c1_0_);
  result.generations.back().prompt_index = 7;
  EXPECT_THROW(store_->commit_shard(result), DbError);
  EXPECT_EQ(rows("generations"), 0);

  // The store stays usable: the corrected result commits.
  store_->commit_shard(make_result(c1_0_));
  EXPECT_EQ(rows("generations"), 4);
}

TEST_F(ShardTest, FailureRetriesThenFailsCellWithError) {
  const int max_attempts = 3;
  for (int attempt = 1; attempt < max_attempts; ++attempt) {
    ASSERT_TRUE(store_->claim_shard(c2_0_, "w"));
    store_->fail_shard(c2_0_, "timeout " + std::to_string(attempt), max_attempts);
    EXPECT_EQ(store_->shards_with_status(ShardStatus::kPending).back(), c2_0_) << "attempt " << attempt;
    EXPECT_EQ(rows("cells WHERE id = 'c2' AND status IN ('pending', 'running')"), 1);
  }
  ASSERT_TRUE(store_->claim_shard(c2_0_, "w"));
  store_->fail_shard(c2_0_, "CUDA error: an illegal memory access", max_attempts);
  EXPECT_EQ(store_->shards_with_status(ShardStatus::kFailed), std::vector<ShardKey>{c2_0_});
  EXPECT_FALSE(store_->claim_shard(c2_0_, "w"));
  EXPECT_EQ(rows("shards WHERE cell_id = 'c2' AND attempts = 3 AND error LIKE '%illegal memory access%'"), 1);
  EXPECT_EQ(rows("cells WHERE id = 'c2' AND status = 'failed' AND attempts = 3 "
                 "AND error LIKE '%illegal memory access%' AND error LIKE '%3 attempts%'"),
            1);
  // A late failure of a finished shard is ignored.
  ASSERT_TRUE(store_->claim_shard(c1_0_, "w"));
  store_->commit_shard(make_result(c1_0_));
  store_->fail_shard(c1_0_, "late", max_attempts);
  EXPECT_EQ(rows("shards WHERE cell_id = 'c1' AND begin = 0 AND status = 'done'"), 1);
}

TEST_F(ShardTest, RetryFailedPutsFailedShardsBackWithFreshAttempts) {
  ASSERT_TRUE(store_->claim_shard(c1_0_, "w"));
  store_->commit_shard(make_result(c1_0_));
  for (const ShardKey& shard : {c1_4_, c2_0_}) {
    ASSERT_TRUE(store_->claim_shard(shard, "w"));
    store_->fail_shard(shard, "out of memory", 1);
  }
  ASSERT_EQ(rows("cells WHERE status = 'failed'"), 2);
  EXPECT_EQ(store_->requeue_failed(), 2);
  EXPECT_EQ(rows("shards WHERE status = 'failed'"), 0);
  EXPECT_EQ(rows("shards WHERE status = 'pending' AND attempts = 0"), 3);                // c1_4, c1_8 and c2_0
  EXPECT_EQ(rows("cells WHERE id = 'c1' AND status = 'running' AND error IS NULL"), 1);  // one shard stays done
  EXPECT_EQ(rows("cells WHERE id = 'c2' AND status = 'pending' AND error IS NULL"), 1);
  EXPECT_EQ(rows("generations"), 4);  // nothing committed is touched
  EXPECT_EQ(store_->requeue_failed(), 0);
  // The retried shard can run and finish its cell.
  for (const ShardKey& shard : {c2_0_}) {
    ASSERT_TRUE(store_->claim_shard(shard, "w"));
    store_->commit_shard(make_result(shard));
  }
  EXPECT_EQ(rows("cells WHERE id = 'c2' AND status = 'done'"), 1);
}

TEST_F(ShardTest, DivergenceColumnsRoundTripAndStayNullWhenUnset) {
  ASSERT_TRUE(store_->claim_shard(c2_0_, "w"));
  ShardResult result = make_result(c2_0_);
  result.generations[1].first_token_id = 42;
  result.generations[1].reference_first_token_id = 7;
  result.generations[1].first_token_kl = 0.25;
  result.generations[1].kv_mse_key = 1.5e-3;
  result.generations[1].kv_mse_value = 2.5e-4;
  store_->commit_shard(result);
  EXPECT_EQ(rows("generations WHERE prompt_index = 1 AND first_token_id = 42 AND reference_first_token_id = 7 "
                 "AND first_token_kl = 0.25 AND kv_mse_key = 1.5e-3 AND kv_mse_value = 2.5e-4"),
            1);
  EXPECT_EQ(rows("generations WHERE prompt_index != 1 AND first_token_id IS NULL AND first_token_kl IS NULL "
                 "AND kv_mse_key IS NULL"),
            3);
}

TEST_F(ShardTest, RequeueInFlightAfterCrash) {
  ASSERT_TRUE(store_->claim_shard(c1_0_, "w1"));
  ASSERT_TRUE(store_->claim_shard(c1_4_, "w2"));
  ASSERT_TRUE(store_->claim_shard(c2_0_, "w3"));
  store_->commit_shard(make_result(c1_0_));
  // The process "crashes": a new writer opens the same database.
  store_.reset();
  store_ = Store::open(path_, StoreOptions{});
  EXPECT_EQ(store_->requeue_in_flight(), 2);
  EXPECT_EQ(store_->shards_with_status(ShardStatus::kPending), (std::vector<ShardKey>{c1_4_, c1_8_, c2_0_}));
  EXPECT_EQ(rows("cells WHERE id = 'c1' AND status = 'running'"), 1);  // one shard done
  EXPECT_EQ(rows("cells WHERE id = 'c2' AND status = 'pending'"), 1);
  EXPECT_EQ(rows("generations"), 4);  // the finished shard survived
  EXPECT_EQ(store_->requeue_in_flight(), 0);
}

TEST_F(ShardTest, ProgressCountsCellsShardsAndPrompts) {
  Progress progress = store_->progress(experiment_);
  EXPECT_EQ(progress.cells, (StatusCounts{.pending = 2, .running = 0, .done = 0, .failed = 0}));
  EXPECT_EQ(progress.shards, (StatusCounts{.pending = 4, .running = 0, .done = 0, .failed = 0}));
  EXPECT_EQ(progress.prompts_total, 14);
  EXPECT_EQ(progress.prompts_done, 0);

  ASSERT_TRUE(store_->claim_shard(c1_0_, "w"));
  store_->commit_shard(make_result(c1_0_));
  ASSERT_TRUE(store_->claim_shard(c1_8_, "w"));
  ASSERT_TRUE(store_->claim_shard(c2_0_, "w"));
  store_->fail_shard(c2_0_, "boom", 1);
  progress = store_->progress(experiment_);
  EXPECT_EQ(progress.cells, (StatusCounts{.pending = 0, .running = 1, .done = 0, .failed = 1}));
  EXPECT_EQ(progress.shards, (StatusCounts{.pending = 1, .running = 1, .done = 1, .failed = 1}));
  EXPECT_EQ(progress.prompts_done, 4);
  EXPECT_EQ(progress.prompts_total, 14);
  EXPECT_EQ(store_->progress(experiment_ + 1).cells.total(), 0);
}

TEST_F(ShardTest, PerplexityWindowsCommitWithTheShard) {
  ASSERT_TRUE(store_->claim_shard(c2_0_, "w"));
  ShardResult result;
  result.shard = c2_0_;
  for (std::int64_t w = 0; w < 4; ++w) {
    result.ppl_windows.push_back(PplWindowRow{
        .window_index = w, .begin_token = w * 512, .n_tokens = 512, .nll_sum = 1500.0 + static_cast<double>(w)});
  }
  store_->commit_shard(result);
  EXPECT_EQ(rows("ppl_windows WHERE cell_id = 'c2'"), 4);
  EXPECT_EQ(store_->done_cell_ids(), std::set<std::string>{"c2"});
}

// A key_magnitudes shard has no generations: its rows alone finish it, and every float32
// reads back bit for bit (the shortest round-trip JSON of the float widened to double).
TEST_F(ShardTest, KeyMagnitudesCommitWithoutGenerationsAndReadBackExactly) {
  ASSERT_TRUE(store_->claim_shard(c2_0_, "w"));
  const std::vector<float> awkward{0.1f,
                                   1.0f / 3.0f,
                                   std::numeric_limits<float>::max(),
                                   std::numeric_limits<float>::denorm_min(),
                                   std::numeric_limits<float>::min(),
                                   std::nextafter(1.0f, 2.0f),
                                   0.0f,
                                   65504.0f,
                                   123456.789f};
  ShardResult result;
  result.shard = c2_0_;
  for (std::int64_t prompt = 0; prompt < 4; ++prompt) {
    for (std::int64_t layer = 0; layer < 2; ++layer) {
      std::vector<float> values = awkward;
      for (float& v : values) v /= static_cast<float>(1 + prompt + 10 * layer);  // stays finite
      result.key_magnitudes.push_back(
          KeyMagnitudeRow{.prompt_index = prompt, .layer = layer, .tokens = 30 + prompt, .max_abs = values});
    }
  }
  store_->commit_shard(result);
  store_->commit_shard(result);  // a duplicate commit adds nothing
  EXPECT_EQ(rows("generations"), 0);
  EXPECT_EQ(rows("key_magnitudes WHERE cell_id = 'c2'"), 8);
  EXPECT_EQ(store_->done_cell_ids(), std::set<std::string>{"c2"});

  Connection connection(path_, ConnectionOptions{.read_only = true, .create = false});
  Statement select(connection,
                   "SELECT prompt_index, layer, tokens, max_abs_json FROM key_magnitudes ORDER BY prompt_index, layer");
  std::size_t row = 0;
  while (select.step()) {
    ASSERT_LT(row, result.key_magnitudes.size());
    const KeyMagnitudeRow& expected = result.key_magnitudes[row++];
    EXPECT_EQ(select.column_int64(0), expected.prompt_index);
    EXPECT_EQ(select.column_int64(1), expected.layer);
    EXPECT_EQ(select.column_int64(2), expected.tokens);
    const auto json = nlohmann::json::parse(select.column_text(3));
    ASSERT_TRUE(json.is_array());
    ASSERT_EQ(json.size(), expected.max_abs.size());
    for (std::size_t c = 0; c < json.size(); ++c) {
      const auto back = static_cast<float>(json[c].get<double>());
      EXPECT_EQ(std::bit_cast<std::uint32_t>(back), std::bit_cast<std::uint32_t>(expected.max_abs[c]))
          << "prompt " << expected.prompt_index << " layer " << expected.layer << " channel " << c << ": "
          << select.column_text(3);
    }
  }
  EXPECT_EQ(row, result.key_magnitudes.size());
}

TEST_F(ShardTest, KeyMagnitudesOutsideTheShardOrEmptyOrNotFiniteAreRefused) {
  ASSERT_TRUE(store_->claim_shard(c1_4_, "w"));
  const auto refused = [&](KeyMagnitudeRow bad, const std::string& expected_text) {
    ShardResult result;
    result.shard = c1_4_;
    result.key_magnitudes.push_back(KeyMagnitudeRow{.prompt_index = 4, .layer = 0, .tokens = 3, .max_abs = {1.0f}});
    result.key_magnitudes.push_back(std::move(bad));
    expect_refused(result, expected_text);
  };
  refused({.prompt_index = 8, .layer = 0, .tokens = 3, .max_abs = {1.0f}}, "key magnitudes of prompt 8 lie outside");
  refused({.prompt_index = 3, .layer = 0, .tokens = 3, .max_abs = {1.0f}}, "key magnitudes of prompt 3 lie outside");
  refused({.prompt_index = 5, .layer = 1, .tokens = 3, .max_abs = {}}, "have no channel");
  refused({.prompt_index = 5, .layer = 2, .tokens = 3, .max_abs = {1.0f, std::numeric_limits<float>::quiet_NaN()}},
          "are not all finite");
  // Nothing of the refused commits stayed, and the shard still runs.
  EXPECT_EQ(rows("key_magnitudes"), 0);
  EXPECT_EQ(store_->shards_with_status(ShardStatus::kRunning), std::vector<ShardKey>{c1_4_});
}

// An ifeval shard's per-instruction verdicts commit with its answers, an unscored instruction
// keeps NULL verdicts and its reason, and a verdict outside the shard or with only one of strict
// and loose is refused with nothing stored.
TEST_F(ShardTest, IfevalVerdictsCommitWithTheirAnswersAndBadOnesAreRefused) {
  ASSERT_TRUE(store_->claim_shard(c1_4_, "w"));
  const auto result_with = [&](IfevalVerdictRow extra) {
    ShardResult result;
    result.shard = c1_4_;
    result.ifeval_verdicts.push_back({.prompt_index = 4,
                                      .instruction_index = 0,
                                      .instruction_id = "punctuation:no_comma",
                                      .strict = true,
                                      .loose = true});
    result.ifeval_verdicts.push_back(std::move(extra));
    return result;
  };
  expect_refused(
      result_with({.prompt_index = 9, .instruction_index = 0, .instruction_id = "x", .strict = false, .loose = false}),
      "IFEval verdict of prompt 9 lies outside");
  expect_refused(result_with({.prompt_index = 5, .instruction_index = 0, .instruction_id = "x", .strict = false}),
                 "has only one of strict and loose");
  EXPECT_EQ(rows("ifeval_verdicts"), 0);
  store_->commit_shard(result_with({.prompt_index = 5,
                                    .instruction_index = 1,
                                    .instruction_id = "keywords:letter_frequency",
                                    .unscored = "kwarg 'letter' is not a-z"}));
  EXPECT_EQ(rows("ifeval_verdicts WHERE cell_id = 'c1'"), 2);
  Connection connection(path_, ConnectionOptions{.read_only = true, .create = false});
  Statement select(connection,
                   "SELECT prompt_index, instruction_index, instruction_id, strict IS NULL, loose IS NULL, unscored "
                   "FROM ifeval_verdicts ORDER BY prompt_index");
  ASSERT_TRUE(select.step());
  EXPECT_EQ(select.column_int64(0), 4);
  EXPECT_EQ(select.column_int64(3), 0);
  ASSERT_TRUE(select.step());
  EXPECT_EQ(select.column_int64(1), 1);
  EXPECT_EQ(select.column_text(2), "keywords:letter_frequency");
  EXPECT_EQ(select.column_int64(3), 1);
  EXPECT_EQ(select.column_int64(4), 1);
  EXPECT_EQ(select.column_text(5), "kwarg 'letter' is not a-z");
}

// A model's diagnosis (diagnoses + pcr_layers): recording it again for the same baseline cell
// replaces it, layers and all; an unregistered cell is refused and nothing is written.
TEST_F(ShardTest, RecordDiagnosisReplacesTheModelsEarlierOne) {
  DiagnosisRecord first{.model = "m", .cell_id = "c1", .mode = "outlier_as_safety", .pcr = 0.15};
  first.recommended_spec_json = R"({"prescription":"fp16_critical_layer","layers":[3]})";
  first.layers = {{.layer = 0, .flip_rate = 0.0, .n = 20, .critical = false},
                  {.layer = 3, .flip_rate = 0.4, .n = 20, .critical = true}};
  const std::int64_t id = store_->record_diagnosis(first);
  EXPECT_EQ(rows("diagnoses WHERE model = 'm' AND mode = 'outlier_as_safety' AND pcr = 0.15 AND scores_json = '{}'"),
            1);
  EXPECT_EQ(rows("pcr_layers WHERE diagnosis_id = " + std::to_string(id) + " AND critical = 1 AND layer = 3"), 1);
  DiagnosisRecord second{.model = "m", .cell_id = "c1", .mode = "multi_layer_dilution"};
  second.layers = {{.layer = 1, .flip_rate = 0.5, .n = 10, .critical = true}};
  store_->record_diagnosis(second);
  EXPECT_EQ(rows("diagnoses"), 1);
  EXPECT_EQ(rows("diagnoses WHERE mode = 'multi_layer_dilution' AND pcr IS NULL"), 1);
  EXPECT_EQ(rows("pcr_layers"), 1);
  EXPECT_THROW(store_->record_diagnosis({.model = "m", .cell_id = "nope", .mode = "none"}), DbError);
  EXPECT_EQ(rows("diagnoses"), 1);
}

}  // namespace
// A refusal_direction shard: per layer and class, one sum of float32 values stored as their
// little-endian bytes, read back bit for bit; a duplicate commit adds nothing.
TEST_F(ShardTest, DirectionSumsCommitAsLittleEndianFloat32) {
  ASSERT_TRUE(store_->claim_shard(c2_0_, "w"));
  const std::vector<float> awkward{
      -0.1f, 1.0f / 3.0f, std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(), -0.0f, 65504.0f};
  ShardResult result;
  result.shard = c2_0_;
  result.direction_sums.push_back({.layer = 0, .harmful = true, .prompts = 3, .sum = awkward});
  result.direction_sums.push_back({.layer = 0, .harmful = false, .prompts = 1, .sum = {1.5f, 2.5f}});
  store_->commit_shard(result);
  store_->commit_shard(result);
  EXPECT_EQ(rows("direction_sums WHERE cell_id = 'c2' AND shard_begin = 0"), 2);
  EXPECT_EQ(store_->done_cell_ids(), std::set<std::string>{"c2"});

  Connection connection(path_, ConnectionOptions{.read_only = true, .create = false});
  Statement select(connection, "SELECT prompts, sum_f32 FROM direction_sums WHERE harmful = 1");
  ASSERT_TRUE(select.step());
  EXPECT_EQ(select.column_int64(0), 3);
  const auto* blob = static_cast<const unsigned char*>(sqlite3_column_blob(select.handle(), 1));
  ASSERT_EQ(sqlite3_column_bytes(select.handle(), 1), static_cast<int>(4 * awkward.size()));
  for (std::size_t i = 0; i < awkward.size(); ++i) {
    std::uint32_t bits = 0;
    for (int b = 3; b >= 0; --b) bits = (bits << 8) | blob[4 * i + static_cast<std::size_t>(b)];  // little-endian
    EXPECT_EQ(bits, std::bit_cast<std::uint32_t>(awkward[i])) << i;
  }
}

TEST_F(ShardTest, DirectionSumsThatAreEmptyNotFiniteOrMiscountedAreRefused) {
  ASSERT_TRUE(store_->claim_shard(c1_4_, "w"));
  const auto refused = [&](DirectionSumRow bad, const std::string& expected_text) {
    ShardResult result;
    result.shard = c1_4_;
    result.direction_sums.push_back({.layer = 0, .harmful = true, .prompts = 2, .sum = {1.0f}});
    result.direction_sums.push_back(std::move(bad));
    expect_refused(result, expected_text);
  };
  refused({.layer = 1, .harmful = false, .prompts = 0, .sum = {1.0f}}, "harmless residual sum at layer 1");
  refused({.layer = 1, .harmful = false, .prompts = 5, .sum = {1.0f}}, "counts 5 prompts");
  refused({.layer = 2, .harmful = true, .prompts = 1, .sum = {}}, "is empty");
  refused({.layer = 3, .harmful = true, .prompts = 1, .sum = {std::numeric_limits<float>::infinity()}},
          "is not all finite");
  EXPECT_EQ(rows("direction_sums"), 0);
  EXPECT_EQ(store_->shards_with_status(ShardStatus::kRunning), std::vector<ShardKey>{c1_4_});
}

}  // namespace kvsafe::db
