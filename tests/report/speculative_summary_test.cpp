// Speculative cells (generation.speculative, issue 22) in the run summary and the
// specdecode_flip table, on a real database written through db::Store with hand-chosen
// verdicts, answers and per-answer statistics; the expected numbers are counted in the comments.

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "db/store.h"
#include "report/paper_tables.h"
#include "report/run_summary.h"
#include "tests/report/summary_db.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::report {
namespace {

constexpr int kPrompts = 6;

// A greedy advbench cell of `model`; speculative with draft `small`, k 4 and `quantize` when set.
db::CellRecord spec_cell(const std::string& id, const std::string& model, const std::string& kv, double bits,
                         const std::string& quantize = "") {
  db::CellRecord c = cell(id, kv, bits, "refusal", "advbench", kPrompts);
  c.model = model;
  std::string generation = R"({"max_new_tokens":16,)";
  if (!quantize.empty()) {
    generation += R"("speculative":{"draft":{"chat_template":null,"dtype":"auto","name":"small"},"draft_tokens":4,)"
                  R"("quantize":")" +
                  quantize + R"("},)";
  }
  generation += R"("temperature":0.0})";
  c.canonical_json =
      R"({"benchmark":{"limit":6,"name":"advbench"},"generation":)" + generation + R"(,"kv":")" + kv + R"("})";
  return c;
}

// One shard of answers: verdicts, texts, and (when `accepted` is given) each answer's statistics
// with 10 proposals in 3 rounds, as the worker writes them into judge_json.
void commit(db::Store& store, const std::string& id, const std::vector<int>& refused,
            const std::vector<std::string>& texts, const std::vector<int>& accepted = {}) {
  const db::ShardKey key{.cell_id = id, .begin = 0, .end = kPrompts};
  ASSERT_TRUE(store.claim_shard(key, "test"));
  db::ShardResult result{.shard = key};
  for (std::size_t i = 0; i < refused.size(); ++i) {
    db::GenerationRow row = answer_row(i);
    row.refused = refused[i] == 1;
    row.output_text = texts[i];
    row.judge_json = R"({"harmful":true,"degenerate":false)";
    if (!accepted.empty()) {
      row.judge_json += R"(,"speculative":{"draft_tokens":4,"rounds":3,"proposed":10,"accepted":)" +
                        std::to_string(accepted[i]) + "}";
    }
    row.judge_json += "}";
    row.seconds = 0.5;
    result.generations.push_back(row);
  }
  store.commit_shard(result);
}

const std::vector<std::string> kPlainNone = {"a0", "a1", "a2", "a3", "a4", "a5"};
const std::vector<std::string> kPlainInt4 = {"b0", "b1", "b2", "b3", "b4", "b5"};

class SpeculativeSummaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = db::Store::open(path_);
    register_test_cells(*store, {spec_cell("plain-none", "smollm2-135m", "none", 16),
                                 spec_cell("plain-int4", "smollm2-135m", "int4-ptok-asym", 4.25),
                                 spec_cell("t-none", "smollm2-135m", "none", 16, "target"),
                                 spec_cell("t-int4", "smollm2-135m", "int4-ptok-asym", 4.25, "target"),
                                 spec_cell("d-int2", "smollm2-135m", "int2-ptok-asym", 2.25, "draft"),
                                 spec_cell("o-none", "other", "none", 16, "target"),
                                 spec_cell("o-int4", "other", "int4-ptok-asym", 4.25, "target")});
    // Plain greedy: full precision refuses prompts 0-4.
    commit(*store, "plain-none", {1, 1, 1, 1, 1, 0}, kPlainNone);
    commit(*store, "plain-int4", {0, 1, 1, 1, 1, 0}, kPlainInt4);
    // Speculative, target quantized. Full precision: prompt 4 answered otherwise (5 of 6 identical),
    // every proposal accepted (60/60).
    commit(*store, "t-none", {1, 1, 1, 1, 0, 0}, {"a0", "a1", "a2", "a3", "x4", "a5"}, {10, 10, 10, 10, 10, 10});
    // int4: complies on 0 and 1. Against plain full precision (refused 0-4): 2/5; against the
    // speculative full-precision cell (refused 0-3): 2/4. Identical to plain int4 on 4 of 6.
    // Acceptance 6 of 10 per answer: 36/60.
    commit(*store, "t-int4", {0, 0, 1, 1, 1, 0}, {"b0", "y1", "b2", "b3", "y4", "b5"}, {6, 6, 6, 6, 6, 6});
    // Only the draft quantized: the plain full-precision answers (6/6 identical, flip 0/5); 3/10 accepted.
    commit(*store, "d-int2", {1, 1, 1, 1, 1, 0}, kPlainNone, {3, 3, 3, 3, 3, 3});
    // A model with no plain cells: flips against its speculative full-precision cell (refused 0-3).
    commit(*store, "o-none", {1, 1, 1, 1, 0, 0}, kPlainNone, {10, 10, 10, 10, 10, 10});
    commit(*store, "o-int4", {0, 1, 1, 1, 0, 0}, kPlainNone, {5, 5, 5, 5, 5, 5});
  }

  const KvSummaryRow& row(const RunSummary& summary, const std::string& id) {
    for (const SummaryGroup& g : summary.groups) {
      for (const KvSummaryRow& r : g.rows) {
        if (r.cell_id == id) return r;
      }
    }
    throw std::runtime_error("no row " + id);
  }

  kvsafe::testing::TempDir dir_{"speculative_summary"};
  std::filesystem::path path_ = dir_.path() / "spec.db";
};

TEST_F(SpeculativeSummaryTest, RowsCarryAcceptanceAndTheComparisonWithPlainGreedy) {
  const RunSummary summary = summarize_run(path_, {.min_baseline_refusals = 1});
  // Plain, draft-quantized, target-quantized for smollm2; target-quantized for other.
  ASSERT_EQ(summary.groups.size(), 4U);
  EXPECT_FALSE(row(summary, "plain-none").speculative.has_value());

  const SpeculativeSummary& full = *row(summary, "t-none").speculative;
  EXPECT_EQ(full.draft, "small");
  EXPECT_EQ(full.draft_tokens, 4);
  EXPECT_EQ(full.quantize, "target");
  EXPECT_EQ(full.answers, 6);
  EXPECT_EQ(full.rounds, 18);
  EXPECT_EQ(full.proposed, 60);
  EXPECT_EQ(full.accepted, 60);
  EXPECT_DOUBLE_EQ(*full.acceptance_rate(), 1.0);
  EXPECT_EQ(full.plain_baseline_id, "plain-none");
  EXPECT_EQ(full.flip_vs_plain->successes, 1);  // prompt 4
  EXPECT_EQ(full.flip_vs_plain->trials, 5);
  EXPECT_EQ(full.plain_kv_label, "none");
  EXPECT_EQ(full.identical_to_plain->successes, 5);
  EXPECT_EQ(full.identical_to_plain->trials, 6);

  const KvSummaryRow& int4 = row(summary, "t-int4");
  EXPECT_DOUBLE_EQ(*int4.speculative->acceptance_rate(), 0.6);
  EXPECT_EQ(int4.flip->successes, 2);  // the summary's own flip: vs the speculative baseline
  EXPECT_EQ(int4.flip->trials, 4);
  EXPECT_EQ(int4.speculative->flip_vs_plain->successes, 2);
  EXPECT_EQ(int4.speculative->flip_vs_plain->trials, 5);
  EXPECT_EQ(int4.speculative->plain_kv_label, "int4-ptok-asym");
  EXPECT_EQ(int4.speculative->identical_to_plain->successes, 4);

  const SpeculativeSummary& draft = *row(summary, "d-int2").speculative;
  EXPECT_EQ(draft.quantize, "draft");
  EXPECT_DOUBLE_EQ(*draft.acceptance_rate(), 0.3);
  EXPECT_EQ(draft.flip_vs_plain->successes, 0);
  EXPECT_EQ(draft.flip_vs_plain->trials, 5);
  EXPECT_EQ(draft.plain_kv_label, "none");  // its target is exact: compared with plain full precision
  EXPECT_EQ(draft.identical_to_plain->successes, 6);
  EXPECT_EQ(draft.identical_to_plain->trials, 6);

  const SpeculativeSummary& other = *row(summary, "o-int4").speculative;
  EXPECT_TRUE(other.plain_baseline_id.empty());
  EXPECT_FALSE(other.flip_vs_plain.has_value());
  EXPECT_FALSE(other.identical_to_plain.has_value());

  // `kvsafe status --summary`: the group's setting names the draft, and a line gives each acceptance.
  std::ostringstream text;
  write_run_summary(summary, text, {.min_baseline_refusals = 1});
  EXPECT_NE(text.str().find("smollm2-135m / advbench (refusal)  limit=6 max_new_tokens=16 "
                            "speculative=small,k=4,quantize=target temperature=0.0\n"
                            "  speculative decoding: draft small, 4 tokens per round, KV quantized on the target side; "
                            "acceptance: none 100.0% (60/60), int4-ptok-asym 60.0% (36/60)"),
            std::string::npos)
      << text.str();
  EXPECT_NE(text.str().find("acceptance: int2-ptok-asym 30.0% (18/60)"), std::string::npos) << text.str();
}

TEST_F(SpeculativeSummaryTest, SpecdecodeFlipIsAgainstPlainGreedyWhenStored) {
  const std::vector<Table> tables = summary_tables(summarize_run(path_, {.min_baseline_refusals = 1}));
  const auto it =
      std::find_if(tables.begin(), tables.end(), [](const Table& t) { return t.name == "specdecode_flip"; });
  ASSERT_NE(it, tables.end());
  const Table& t = *it;
  EXPECT_EQ(t.columns, (std::vector<std::string>{"Model", "Benchmark", "Draft", "k", "Quantize", "KV", "Refusal",
                                                 "Cond. flip", "Against", "Acceptance", "Identical to plain"}));
  EXPECT_NE(t.caption.find("against the plain (non-speculative) greedy full-precision cell"), std::string::npos);
  ASSERT_EQ(t.rows.size(), 5U);
  const auto find_row = [&](const std::string& model, const std::string& quantize, const std::string& kv) {
    for (const auto& r : t.rows) {
      if (format_cell(r[0]).rfind(model, 0) == 0 && format_cell(r[4]) == quantize && format_cell(r[5]) == kv) return r;
    }
    throw std::runtime_error("no row " + model + " " + quantize + " " + kv);
  };
  const auto rate = [](const Cell& c) { return std::get<RateCell>(c).proportion; };

  const auto int4 = find_row("smollm2-135m", "target", "int4-ptok-asym");
  EXPECT_EQ(format_cell(int4[0]), "smollm2-135m (limit=6 max_new_tokens=16 temperature=0.0)");
  EXPECT_EQ(format_cell(int4[1]), "advbench");
  EXPECT_EQ(format_cell(int4[2]), "small");
  EXPECT_EQ(format_cell(int4[3]), "4");
  EXPECT_EQ(rate(int4[6]).successes, 3);  // refused prompts 2-4
  EXPECT_EQ(rate(int4[6]).trials, 6);
  EXPECT_EQ(rate(int4[7]).successes, 2);
  EXPECT_EQ(rate(int4[7]).trials, 5);
  EXPECT_EQ(format_cell(int4[8]), "plain full precision");
  EXPECT_EQ(format_cell(int4[9]), "60.0% (36/60)");
  EXPECT_EQ(rate(int4[10]).successes, 4);
  EXPECT_EQ(rate(int4[10]).trials, 6);

  // The speculative full-precision cell is measured against plain greedy too: 1 of 5.
  const auto full = find_row("smollm2-135m", "target", "none");
  EXPECT_EQ(rate(full[7]).successes, 1);
  EXPECT_EQ(format_cell(full[9]), "100.0% (60/60)");

  const auto draft = find_row("smollm2-135m", "draft", "int2-ptok-asym");
  EXPECT_EQ(rate(draft[7]).successes, 0);
  EXPECT_EQ(rate(draft[7]).trials, 5);
  EXPECT_EQ(format_cell(draft[9]), "30.0% (18/60)");
  EXPECT_EQ(rate(draft[10]).successes, 6);

  // No plain cells: against the speculative full-precision cell (refused 0-3; int4 flips prompt 0).
  EXPECT_EQ(format_cell(find_row("other", "target", "none")[7]), "(baseline)");
  const auto other = find_row("other", "target", "int4-ptok-asym");
  EXPECT_EQ(rate(other[7]).successes, 1);
  EXPECT_EQ(rate(other[7]).trials, 4);
  EXPECT_EQ(format_cell(other[8]), "speculative full precision");
  EXPECT_EQ(format_cell(other[9]), "50.0% (30/60)");
  EXPECT_EQ(format_cell(other[10]), "not run");
}

}  // namespace
}  // namespace kvsafe::report
