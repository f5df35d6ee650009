// Speculative cells (generation.speculative, issue 22) through ShardExecutor on stories260K and
// the paper's custom prompts: a model drafting for itself at full precision gives the plain
// cell's rows with every proposal accepted; `quantize: draft` with an int2 KV keeps the plain
// full-precision answers and only lowers the acceptance; `quantize: target` with a per-token
// quantizer gives the plain quantized cell's answers; a draft whose vocabulary differs is refused
// naming both models. The cells are batch 1 with draft_tokens 3, so the verify call (4 tokens)
// runs attention's decode loops and the equalities are exact (engine/speculative_generator.h).

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/environment.h"
#include "common/error.h"
#include "tests/testing/model_files.h"
#include "tests/testing/temp_dir.h"
#include "tests/worker/custom_prompts_cell.h"
#include "worker/shard_executor.h"

namespace kvsafe::worker {
namespace {

using orchestrator::Cell;
using orchestrator::SpeculativeQuantize;

constexpr std::int64_t kPrompts = 6;

std::filesystem::path data_dir() {
  return Environment::from_process().data_dir;
}

Cell plain_cell(const std::string& kv) {
  return test_cells::custom_prompts_cell(kv, {.prompts = kPrompts, .batch_size = 1, .id_tag = "spec-plain"});
}

// The same cell drafted by `draft` (default: the cell's own model).
Cell speculative_cell(const std::string& kv, SpeculativeQuantize quantize,
                      const orchestrator::ModelSpec* draft = nullptr) {
  Cell cell = test_cells::custom_prompts_cell(
      kv, {.prompts = kPrompts, .batch_size = 1, .id_tag = "spec-" + std::string(orchestrator::to_string(quantize))});
  cell.generation->speculative = orchestrator::SpeculativeSettings{
      .draft = draft != nullptr ? *draft : cell.model, .draft_tokens = 3, .quantize = quantize};
  return cell;
}

struct Totals {
  std::int64_t rounds = 0, proposed = 0, accepted = 0;
};

// The rows' judge_json "speculative" summed; each row must have one with draft_tokens 3.
Totals speculative_totals(const db::ShardResult& result) {
  Totals t;
  for (const db::GenerationRow& row : result.generations) {
    const nlohmann::json stats = nlohmann::json::parse(row.judge_json).at("speculative");
    EXPECT_EQ(stats.at("draft_tokens").get<std::int64_t>(), 3);
    EXPECT_GT(stats.at("rounds").get<std::int64_t>(), 0) << row.prompt_index;
    t.rounds += stats.at("rounds").get<std::int64_t>();
    t.proposed += stats.at("proposed").get<std::int64_t>();
    t.accepted += stats.at("accepted").get<std::int64_t>();
  }
  return t;
}

// A row's judge_json without its speculative statistics: the plain cell's judge_json.
std::string without_speculative(const std::string& judge_json) {
  nlohmann::json json = nlohmann::json::parse(judge_json);
  json.erase("speculative");
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The answer and what was measured of it, every field but the timing, the judge_json's
// speculative statistics and (with `kv_mse`) the KV MSE, which the verify calls average differently.
void expect_same_answers(const db::ShardResult& plain, const db::ShardResult& speculative, bool kv_mse) {
  ASSERT_EQ(plain.generations.size(), speculative.generations.size());
  for (std::size_t i = 0; i < plain.generations.size(); ++i) {
    const db::GenerationRow& a = plain.generations[i];
    const db::GenerationRow& b = speculative.generations[i];
    EXPECT_EQ(a.prompt_index, b.prompt_index);
    EXPECT_EQ(a.rendered_sha256, b.rendered_sha256);
    EXPECT_EQ(a.output_text, b.output_text) << "prompt " << i;
    EXPECT_EQ(a.output_tokens, b.output_tokens) << "prompt " << i;
    EXPECT_EQ(a.refused, b.refused) << "prompt " << i;
    EXPECT_EQ(a.judge_json, without_speculative(b.judge_json)) << "prompt " << i;
    EXPECT_EQ(a.first_token_id, b.first_token_id) << "prompt " << i;
    EXPECT_EQ(a.reference_first_token_id, b.reference_first_token_id) << "prompt " << i;
    EXPECT_EQ(a.first_token_kl, b.first_token_kl) << "prompt " << i;
    if (kv_mse) {
      EXPECT_EQ(a.kv_mse_key, b.kv_mse_key) << "prompt " << i;
      EXPECT_EQ(a.kv_mse_value, b.kv_mse_value) << "prompt " << i;
    }
  }
}

class SpeculativeShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::stories260k_gguf_path()) ||
        !std::filesystem::exists(data_dir() / "paper_repo" / "refusal.txt")) {
      GTEST_SKIP() << "stories260K or ../shared/datasets missing";
    }
  }
  ShardExecutor executor_{{.data_dir = data_dir(), .threads = 1}};
};

TEST_F(SpeculativeShardTest, SelfDraftAtFullPrecisionIsThePlainCell) {
  const db::ShardResult plain = executor_.run(plain_cell("none"), 0, kPrompts);
  const db::ShardResult speculative =
      executor_.run(speculative_cell("none", SpeculativeQuantize::kTarget), 0, kPrompts);
  expect_same_answers(plain, speculative, /*kv_mse=*/true);
  const Totals t = speculative_totals(speculative);
  EXPECT_GT(t.proposed, 0);
  EXPECT_EQ(t.accepted, t.proposed);  // acceptance 1.0: the draft is the target, both exact
  for (const db::GenerationRow& row : speculative.generations) EXPECT_FALSE(row.kv_mse_key.has_value());
}

TEST_F(SpeculativeShardTest, QuantizedDraftKeepsTheFullPrecisionAnswers) {
  const db::ShardResult plain = executor_.run(plain_cell("none"), 0, kPrompts);
  const db::ShardResult speculative =
      executor_.run(speculative_cell("int2-ptok-asym", SpeculativeQuantize::kDraft), 0, kPrompts);
  // The target is exact: no first-token KL, no target KV MSE, the plain full-precision answers.
  expect_same_answers(plain, speculative, /*kv_mse=*/true);
  const Totals t = speculative_totals(speculative);
  EXPECT_GT(t.proposed, 0);
  EXPECT_LT(t.accepted, t.proposed);  // an int2 draft cache proposes worse tokens
  std::cout << "[ report ] int2 draft: accepted " << t.accepted << " of " << t.proposed << " proposals in " << t.rounds
            << " rounds\n";
}

TEST_F(SpeculativeShardTest, QuantizedTargetIsThePlainQuantizedCell) {
  const db::ShardResult plain = executor_.run(plain_cell("int4-ptok-asym"), 0, kPrompts);
  const db::ShardResult speculative =
      executor_.run(speculative_cell("int4-ptok-asym", SpeculativeQuantize::kTarget), 0, kPrompts);
  // Per-token statistics store each slot alike in any call: the plain quantized cell's answers, its
  // first-token KL included (both batch 1, the same reference prefill).
  expect_same_answers(plain, speculative, /*kv_mse=*/false);
  const Totals t = speculative_totals(speculative);
  EXPECT_GT(t.proposed, 0);
  EXPECT_LE(t.accepted, t.proposed);
  for (const db::GenerationRow& row : speculative.generations) {
    EXPECT_TRUE(row.kv_mse_key.has_value());
    EXPECT_TRUE(row.first_token_kl.has_value());
  }
}

// A draft under another name (here the same weights' file, loaded as a second model) is loaded
// beside the target, and both are reported for the run's provenance (runs.models_json); a
// self-draft loads nothing more.
TEST_F(SpeculativeShardTest, TheDraftIsReportedBesideTheTarget) {
  (void)executor_.run(speculative_cell("none", SpeculativeQuantize::kTarget), 0, 1);
  const std::vector<db::ModelRecord> self = executor_.take_models_loaded();
  ASSERT_EQ(self.size(), 1U);
  EXPECT_EQ(self[0].name, "stories260k");
  const orchestrator::ModelSpec draft{.name = "stories-draft", .path = testing::stories260k_gguf_path()};
  const db::ShardResult result =
      executor_.run(speculative_cell("none", SpeculativeQuantize::kTarget, &draft), 0, kPrompts);
  const std::vector<db::ModelRecord> loaded = executor_.take_models_loaded();
  ASSERT_EQ(loaded.size(), 1U);  // the target was held already
  EXPECT_EQ(loaded[0].name, "stories-draft");
  EXPECT_EQ(loaded[0].sha256, self[0].sha256);                                          // the same file
  EXPECT_EQ(speculative_totals(result).accepted, speculative_totals(result).proposed);  // the same weights
  EXPECT_TRUE(executor_.take_models_loaded().empty());
}

TEST_F(SpeculativeShardTest, ADraftWithAnotherVocabularyIsRefusedNamingBoth) {
  // stories260K with token 0 spelled "<unq>": the same size, another vocabulary.
  testing::TempDir dir("speculative_vocab");
  std::ifstream in(testing::stories260k_gguf_path(), std::ios::binary);
  std::ostringstream read;
  read << in.rdbuf();
  std::string bytes = read.str();
  const std::size_t at = bytes.find("<unk>");
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(bytes.find("<unk>", at + 1), std::string::npos);
  bytes.replace(at, 5, "<unq>");
  const std::filesystem::path other = dir.path() / "other.gguf";
  std::ofstream(other, std::ios::binary) << bytes;

  orchestrator::ModelSpec draft{.name = "stories-other", .path = other};
  try {
    (void)executor_.run(speculative_cell("none", SpeculativeQuantize::kTarget, &draft), 0, 1);
    FAIL() << "a draft of another vocabulary was accepted";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("`stories-other`"), std::string::npos) << message;
    EXPECT_NE(message.find("`stories260k`"), std::string::npos) << message;
    EXPECT_NE(message.find("spell token 0 differently"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace kvsafe::worker
