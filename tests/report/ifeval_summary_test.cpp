// IFEval accuracy in the run summary and the ifeval_tradeoff table, on a real database written
// through db::Store with hand-chosen per-instruction verdicts; the expected numbers are counted by
// hand in the comments.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "db/store.h"
#include "report/ifeval_accuracy.h"
#include "report/paper_tables.h"
#include "report/run_summary.h"
#include "tests/report/summary_db.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::report {
namespace {

using kvsafe::testing::TempDir;
using Verdicts = std::vector<std::optional<bool>>;

// One shard of answers (benign, complied) with per-instruction verdicts: strict[i] and loose[i]
// are prompt i's instructions; an empty optional is an unscored instruction.
void commit_ifeval(db::Store& store, const std::string& id, const std::vector<Verdicts>& strict,
                   const std::vector<Verdicts>& loose) {
  const db::ShardKey key{.cell_id = id, .begin = 0, .end = static_cast<std::int64_t>(strict.size())};
  ASSERT_TRUE(store.claim_shard(key, "test"));
  db::ShardResult result{.shard = key};
  for (std::size_t i = 0; i < strict.size(); ++i) {
    db::GenerationRow row = answer_row(i);
    row.refused = false;
    row.judge_json = R"({"harmful":false})";
    result.generations.push_back(row);
    for (std::size_t k = 0; k < strict[i].size(); ++k) {
      result.ifeval_verdicts.push_back({.prompt_index = static_cast<std::int64_t>(i),
                                        .instruction_index = static_cast<std::int64_t>(k),
                                        .instruction_id = "punctuation:no_comma",
                                        .strict = strict[i][k],
                                        .loose = loose[i][k],
                                        .unscored = strict[i][k] ? "" : "kwarg 'letter' is not a-z"});
    }
  }
  store.commit_shard(result);
}

Table table_named(const std::vector<Table>& tables, const std::string& name) {
  const auto it = std::find_if(tables.begin(), tables.end(), [&](const Table& t) { return t.name == name; });
  if (it == tables.end()) throw std::runtime_error("no table " + name);
  return *it;
}

TEST(IfevalSummary, AccuracyLostAndGainedAndTheTradeoffTable) {
  TempDir dir;
  const auto path = dir.path() / "ifeval.db";
  constexpr auto T = std::optional<bool>(true), F = std::optional<bool>(false), U = std::optional<bool>();
  {
    auto store = db::Store::open(path);
    register_test_cells(*store, {cell("i-none", "none", 16, "ifeval", "ifeval", 4),
                                 cell("i-int4", "int4-ptok-asym", 4.25, "ifeval", "ifeval", 4),
                                 cell("a-none", "none", 16, "refusal", "advbench", 4),
                                 cell("a-int4", "int4-ptok-asym", 4.25, "refusal", "advbench", 4)});
    // Full precision: prompt 3 has an unscored instruction, so 3 prompts and 5 instructions count.
    // Prompt level strict: prompts 0, 2 (2/3); loose: 0, 1, 2 (3/3). Instructions strict 4/5, loose 5/5.
    commit_ifeval(*store, "i-none", {{T, T}, {F}, {T}, {U, T}}, {{T, T}, {T}, {T}, {U, T}});
    // int4: prompt strict: 1 (1/3); loose: 0, 1 (2/3). Instructions strict 2/5, loose 3/5.
    // Against full precision: prompts 0 and 2 lost, prompt 1 gained, of 3 paired.
    commit_ifeval(*store, "i-int4", {{T, F}, {T}, {F}, {U, F}}, {{T, T}, {T}, {F}, {U, F}});
    const std::vector<bool> harmful(4, true);
    commit_answers(*store, "a-none", {1, 1, 1, 1}, harmful);
    commit_answers(*store, "a-int4", {0, 1, 1, 1}, harmful);  // refusal 3/4, flip 1/4
  }

  const std::map<std::string, IfevalCellVerdicts> stored = read_ifeval_verdicts(path);
  ASSERT_EQ(stored.size(), 2U);
  const IfevalAccuracy base = ifeval_accuracy(stored.at("i-none"));
  EXPECT_EQ(base.prompts, 4);
  EXPECT_EQ(base.unscored_instructions, 1);
  EXPECT_EQ(base.unscored_prompts, 1);
  EXPECT_EQ(base.prompt_strict.successes, 2);
  EXPECT_EQ(base.prompt_strict.trials, 3);
  EXPECT_EQ(base.prompt_loose.successes, 3);
  EXPECT_EQ(base.inst_strict.successes, 4);
  EXPECT_EQ(base.inst_strict.trials, 5);
  EXPECT_EQ(base.inst_loose.successes, 5);
  const auto [low, high] = wilson(2, 3);
  EXPECT_NEAR(base.prompt_strict.lower, low, 1e-12);
  EXPECT_NEAR(base.prompt_strict.upper, high, 1e-12);
  const IfevalAccuracy int4 = ifeval_accuracy(stored.at("i-int4"));
  EXPECT_EQ(int4.prompt_strict.successes, 1);
  EXPECT_EQ(int4.prompt_loose.successes, 2);
  EXPECT_EQ(int4.inst_strict.successes, 2);
  EXPECT_EQ(int4.inst_loose.successes, 3);
  const IfevalChange change = ifeval_change(stored.at("i-int4"), stored.at("i-none"));
  EXPECT_EQ(change.paired, 3);
  EXPECT_EQ(change.lost, 2);
  EXPECT_EQ(change.gained, 1);

  const RunSummary summary = summarize_run(path, {.min_baseline_refusals = 1});
  std::ostringstream text;
  write_run_summary(summary, text, {.min_baseline_refusals = 1});
  EXPECT_NE(text.str().find("smollm2-135m / ifeval (ifeval)"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("66.7% [20.8, 93.9] 2/3"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("-2 +1 of 3"), std::string::npos) << text.str();

  const Table t = table_named(summary_tables(summary), "ifeval_tradeoff");
  ASSERT_EQ(t.rows.size(), 2U);
  ASSERT_EQ(t.columns.size(), 8U);
  EXPECT_EQ(t.columns[6], "Refusal advbench (limit=4)");
  EXPECT_EQ(format_cell(t.rows[0][1]), "none");
  EXPECT_EQ(format_cell(t.rows[0][5]), "(baseline)");
  EXPECT_EQ(format_cell(t.rows[1][1]), "int4-ptok-asym");
  EXPECT_EQ(std::get<RateCell>(t.rows[1][3]).proportion.successes, 1);  // prompt strict 1/3
  EXPECT_EQ(std::get<RateCell>(t.rows[1][4]).proportion.successes, 3);  // inst loose 3/5
  EXPECT_EQ(format_cell(t.rows[1][5]), "-2 / +1 of 3");
  EXPECT_EQ(std::get<RateCell>(t.rows[1][6]).proportion.successes, 3);  // refused 3/4
  EXPECT_EQ(std::get<RateCell>(t.rows[1][7]).proportion.successes, 1);  // flip 1/4
  EXPECT_EQ(std::get<RateCell>(t.rows[1][7]).proportion.trials, 4);
}

}  // namespace
}  // namespace kvsafe::report
