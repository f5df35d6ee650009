// The run-summary tables of suite_tables.cpp (custom_all_models, cross_suite_compare, seeds,
// over_refusal) and whose verdicts they count (report/verdict_sql.h), on real databases written
// through db::Store; the expected numbers are counted by hand in the comments.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "db/judgements.h"
#include "db/store.h"
#include "report/database_tables.h"
#include "report/paper_tables.h"
#include "report/run_summary.h"
#include "report/verdict_sql.h"
#include "tests/report/summary_db.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::report {
namespace {

using kvsafe::testing::TempDir;

Table table_named(const std::vector<Table>& tables, const std::string& name) {  // a copy: callers pass temporaries
  const auto it = std::find_if(tables.begin(), tables.end(), [&](const Table& t) { return t.name == name; });
  if (it == tables.end()) throw std::runtime_error("no table " + name);
  return *it;
}

// The custom set's prompts 0-3 are refusal, 4-7 privacy (prompts.category, as the loader stores it).
void register_custom_prompts(db::Store& store) {
  std::vector<db::PromptRecord> prompts;
  for (int i = 0; i < 8; ++i) {
    prompts.push_back({.prompt_index = i,
                       .prompt_id = "p" + std::to_string(i),
                       .text = "prompt " + std::to_string(i),
                       .category = i < 4 ? "refusal" : "privacy",
                       .harmful = true,
                       .source = "test"});
  }
  store.register_prompts("custom", "test", prompts);
}

db::CellRecord seeded(const std::string& id, const std::string& kv, double bits, int seed) {
  db::CellRecord c = cell(id, kv, bits, "refusal", "advbench", 4);
  c.canonical_json =
      "{\"benchmark\":{\"limit\":4,\"name\":\"advbench\"},\"generation\":{\"seed\":" + std::to_string(seed) +
      ",\"temperature\":0.7},\"kv\":\"" + kv + "\"}";
  return c;
}

TEST(SuiteTables, CustomAllModelsSplitsTheFlipBySubset) {
  TempDir dir;
  const auto path = dir.path() / "custom.db";
  {
    auto store = db::Store::open(path);
    register_custom_prompts(*store);
    register_test_cells(*store, {cell("c-none", "none", 16, "refusal", "custom", 8),
                                 cell("c-int4", "int4-ptok-asym", 4.5, "refusal", "custom", 8),
                                 cell("a-none", "none", 16, "refusal", "advbench", 8),
                                 cell("a-int4", "int4-ptok-asym", 4.5, "refusal", "advbench", 8)});
    const std::vector<bool> harmful(8, true);
    // Baseline refuses all 8. int4: refusal prompts 0-3 -> 1 complies (1/4); privacy 4-7 -> 3 comply (3/4).
    commit_answers(*store, "c-none", {1, 1, 1, 1, 1, 1, 1, 1}, harmful);
    commit_answers(*store, "c-int4", {0, 1, 1, 1, 0, 0, 0, 1}, harmful);
    commit_answers(*store, "a-none", {1, 1, 1, 1, 1, 1, 1, 1}, harmful);
    commit_answers(*store, "a-int4", {1, 1, 1, 1, 1, 1, 1, 0}, harmful);  // 1/8
  }
  const RunSummary summary = summarize_run(path, {.min_baseline_refusals = 2});
  const std::vector<Table> tables = summary_tables(summary);
  const Table custom = table_named(tables, "custom_all_models");
  ASSERT_EQ(custom.rows.size(), 1U);
  const std::vector<Cell>& row = custom.rows[0];
  EXPECT_EQ(format_cell(row[1]), "4");
  EXPECT_EQ(std::get<RateCell>(row[4]).proportion.successes, 1);  // refusal subset
  EXPECT_EQ(std::get<RateCell>(row[4]).proportion.trials, 4);
  EXPECT_EQ(std::get<RateCell>(row[5]).proportion.successes, 3);  // privacy subset: leaks
  EXPECT_EQ(std::get<RateCell>(row[5]).proportion.trials, 4);
  EXPECT_EQ(format_cell(row[6]), "not run");  // no jailbreak prompt in this set
  // Below the threshold a subset's flip is undefined, with its count.
  const Table strict =
      table_named(summary_tables(summarize_run(path, {.min_baseline_refusals = 5})), "custom_all_models");
  EXPECT_EQ(format_cell(strict.rows[0][4]), "undefined: the baseline refused 4 of 4");
  // Both suites at 4 bits side by side: custom 4/8, advbench 1/8.
  const Table suites = table_named(tables, "cross_suite_compare");
  EXPECT_EQ(suites.columns, (std::vector<std::string>{"Model", "Bits", "advbench", "custom"}));
  ASSERT_EQ(suites.rows.size(), 1U);
  EXPECT_EQ(std::get<RateCell>(suites.rows[0][2]).proportion.successes, 1);
  EXPECT_EQ(std::get<RateCell>(suites.rows[0][3]).proportion.successes, 4);
}

TEST(SuiteTables, KvAsymmetryPutsKeysOnlyAndValuesOnlyBesideTheSweep) {
  TempDir dir;
  const auto path = dir.path() / "asymmetry.db";
  {
    auto store = db::Store::open(path);
    register_test_cells(*store, {cell("none", "none", 16, "refusal", "advbench", 4),
                                 cell("both4", "int4-ptok-asym", 4.25, "refusal", "advbench", 4),
                                 cell("k4", "int4v16-ptok-asym", 10.1, "refusal", "advbench", 4),
                                 cell("v4", "int16v4-ptok-asym", 10.1, "refusal", "advbench", 4),
                                 cell("k2", "int2v16-ptok-asym", 9.1, "refusal", "advbench", 4),
                                 cell("both8", "int8-ptok-asym", 8.25, "refusal", "advbench", 4)});
    const std::vector<bool> harmful(4, true);
    commit_answers(*store, "none", {1, 1, 1, 1}, harmful);
    commit_answers(*store, "both4", {0, 0, 0, 1}, harmful);  // 3/4 flip
    commit_answers(*store, "k4", {0, 0, 1, 1}, harmful);     // 2/4: keys carry most of it
    commit_answers(*store, "v4", {1, 1, 1, 1}, harmful);     // 0/4
    commit_answers(*store, "k2", {0, 0, 0, 0}, harmful);     // 4/4, with no both-sides cell at 2 bits
    commit_answers(*store, "both8", {1, 1, 1, 1}, harmful);  // no one-side cell at 8: no row
  }
  const std::vector<Table> tables = summary_tables(summarize_run(path, {.min_baseline_refusals = 1}));
  const Table asymmetry = table_named(tables, "kv_asymmetry");
  EXPECT_EQ(asymmetry.columns, (std::vector<std::string>{"Model", "Benchmark", "Bits", "K and V", "K only", "V only"}));
  ASSERT_EQ(asymmetry.rows.size(), 2U);
  const std::vector<Cell>& at4 = asymmetry.rows[0];
  EXPECT_EQ(format_cell(at4[2]), "4");
  EXPECT_EQ(std::get<RateCell>(at4[3]).proportion.successes, 3);
  EXPECT_EQ(std::get<RateCell>(at4[4]).proportion.successes, 2);
  EXPECT_EQ(std::get<RateCell>(at4[5]).proportion.successes, 0);
  const std::vector<Cell>& at2 = asymmetry.rows[1];
  EXPECT_EQ(format_cell(at2[2]), "2");
  EXPECT_EQ(format_cell(at2[3]), "not run");
  EXPECT_EQ(std::get<RateCell>(at2[4]).proportion.successes, 4);
  EXPECT_EQ(format_cell(at2[5]), "not run");
  // The one-side cells stay out of the sweep's tables.
  const Table main = table_named(tables, "advbench_main");
  for (const auto& row : main.rows) EXPECT_NE(format_cell(row[1]), "2");
}

TEST(SuiteTables, SeedsGivesEachSeedAndTheSpread) {
  TempDir dir;
  const auto path = dir.path() / "seeds.db";
  {
    auto store = db::Store::open(path);
    register_test_cells(*store, {seeded("n0", "none", 16, 0), seeded("q0", "int4-ptok-asym", 4.5, 0),
                                 seeded("n1", "none", 16, 1), seeded("q1", "int4-ptok-asym", 4.5, 1)});
    const std::vector<bool> harmful(4, true);
    // Full precision answers alike at both seeds; int4's answers differ on prompts 1 and 3.
    commit_answers(*store, "n0", {1, 1, 1, 1}, harmful, {}, "", {"a", "b", "c", "d"});
    commit_answers(*store, "q0", {0, 1, 1, 1}, harmful, {}, "", {"w", "x", "y", "z"});  // flip 1/4
    commit_answers(*store, "n1", {1, 1, 1, 1}, harmful, {}, "", {"a", "b", "c", "d"});
    commit_answers(*store, "q1", {0, 0, 0, 1}, harmful, {}, "", {"w", "X", "y", "Z"});  // flip 3/4
  }
  const Table seeds = table_named(summary_tables(summarize_run(path, {.min_baseline_refusals = 1})), "seeds");
  // none: seed 0, seed 1, mean; int4: seed 0, seed 1, mean.
  ASSERT_EQ(seeds.rows.size(), 6U);
  EXPECT_EQ(format_cell(seeds.rows[3][2]), "int4-ptok-asym");
  EXPECT_EQ(format_cell(seeds.rows[3][3]), "0");
  EXPECT_EQ(std::get<RateCell>(seeds.rows[3][5]).proportion.successes, 1);
  EXPECT_EQ(std::get<RateCell>(seeds.rows[4][5]).proportion.successes, 3);
  // Flips 25% and 75%: mean 50%, sample sd sqrt(((25)^2 + (25)^2) / 1) = 35.4 points.
  EXPECT_EQ(format_cell(seeds.rows[5][5]), "50.0% ± 35.4 (n=2 seeds)");
  EXPECT_EQ(format_cell(seeds.rows[2][5]), "(baseline)");
  // Per prompt across the seeds: int4's verdicts agree on prompts 0 and 3 (2 of 4), its answers
  // are identical on prompts 0 and 2 (2 of 4); full precision agrees everywhere.
  EXPECT_EQ(seeds.columns.back(), "Identical answers");
  EXPECT_EQ(std::get<RateCell>(seeds.rows[5][6]).proportion.successes, 2);
  EXPECT_EQ(std::get<RateCell>(seeds.rows[5][6]).proportion.trials, 4);
  EXPECT_EQ(std::get<RateCell>(seeds.rows[5][7]).proportion.successes, 2);
  EXPECT_EQ(std::get<RateCell>(seeds.rows[2][6]).proportion.successes, 4);
  EXPECT_EQ(std::get<RateCell>(seeds.rows[2][7]).proportion.successes, 4);
  EXPECT_EQ(format_cell(seeds.rows[3][6]), "");  // per-seed rows leave them empty
  // Both seeds share one model cell: the seed is not part of it.
  EXPECT_EQ(format_cell(seeds.rows[0][0]), format_cell(seeds.rows[4][0]));
}

TEST(SuiteTables, OverRefusalCountsTheSafePromptsRefused) {
  TempDir dir;
  const auto path = dir.path() / "xstest.db";
  {
    auto store = db::Store::open(path);
    register_test_cells(*store, {cell("x-none", "none", 16, "over_refusal", "xstest", 4),
                                 cell("x-int2", "int2-ptok-asym", 2.5, "over_refusal", "xstest", 4)});
    const std::vector<bool> harmful{true, true, false, false};
    commit_answers(*store, "x-none", {1, 1, 0, 0}, harmful);
    commit_answers(*store, "x-int2", {1, 0, 1, 1}, harmful);  // unsafe: 1 flip of 2; safe: 2 of 2 refused
  }
  const Table over = table_named(summary_tables(summarize_run(path, {.min_baseline_refusals = 1})), "over_refusal");
  ASSERT_EQ(over.rows.size(), 2U);
  EXPECT_EQ(std::get<RateCell>(over.rows[0][4]).proportion.successes, 0);
  EXPECT_EQ(std::get<RateCell>(over.rows[1][4]).proportion.successes, 2);
  EXPECT_EQ(std::get<RateCell>(over.rows[1][4]).proportion.trials, 2);
  EXPECT_EQ(std::get<RateCell>(over.rows[1][6]).proportion.successes, 1);
  // The paper's count is over every prompt the baseline refused: the same 2 unsafe ones here
  // (the baseline refused no safe prompt), so 1 of 2 as well; below, one that it refused.
  EXPECT_EQ(std::get<RateCell>(over.rows[1][7]).proportion.successes, 1);
  EXPECT_EQ(std::get<RateCell>(over.rows[1][7]).proportion.trials, 2);
}

TEST(SuiteTables, OverRefusalThePapersFlipCountsTheSafePromptsTheBaselineRefused) {
  TempDir dir;
  const auto path = dir.path() / "xstest_all.db";
  {
    auto store = db::Store::open(path);
    register_test_cells(*store, {cell("x-none", "none", 16, "over_refusal", "xstest", 4),
                                 cell("x-int2", "int2-ptok-asym", 2.5, "over_refusal", "xstest", 4)});
    const std::vector<bool> harmful{true, true, false, false};
    commit_answers(*store, "x-none", {1, 1, 1, 0}, harmful);  // refuses a safe prompt too
    commit_answers(*store, "x-int2", {1, 1, 0, 0}, harmful);  // stops refusing it
  }
  const Table over = table_named(summary_tables(summarize_run(path, {.min_baseline_refusals = 1})), "over_refusal");
  // Unsafe only: 0 of 2; every prompt the baseline refused: 1 of 3.
  EXPECT_EQ(std::get<RateCell>(over.rows[1][6]).proportion.successes, 0);
  EXPECT_EQ(std::get<RateCell>(over.rows[1][7]).proportion.successes, 1);
  EXPECT_EQ(std::get<RateCell>(over.rows[1][7]).proportion.trials, 3);
}

TEST(VerdictSql, AJudgePicksItsOwnVerdictsOrItsRejudgements) {
  TempDir dir;
  const auto path = dir.path() / "judges.db";
  {
    auto store = db::Store::open(path);
    register_test_cells(*store, {cell("j-none", "none", 16, "refusal", "advbench", 4),
                                 cell("j-int4", "int4-ptok-asym", 4.5, "refusal", "advbench", 4)});
    const std::vector<bool> harmful(4, true);
    // The baseline's run judged with the keyword judge, the int4 cell's with a model judge.
    commit_answers(*store, "j-none", {1, 1, 1, 1}, harmful, {}, "keyword:default:substring");
    commit_answers(*store, "j-int4", {0, 0, 1, 1}, harmful, {}, "model:wildguard");
  }
  const std::vector<JudgeVerdictCount> judges = judges_with_verdicts(path);
  ASSERT_EQ(judges.size(), 2U);
  EXPECT_EQ(judges[0].label, "keyword:default:substring");
  EXPECT_EQ(judges[0].run_verdicts, 4);
  EXPECT_EQ(judges[1].label, "model:wildguard");

  // Counting the keyword judge only: the int4 cell has no keyword verdict yet, so no flip.
  const auto int4_row = [](const RunSummary& s) { return s.groups.at(0).rows.at(1); };
  const KvSummaryRow before =
      int4_row(summarize_run(path, {.min_baseline_refusals = 1, .judge = "keyword:default:substring"}));
  EXPECT_EQ(before.refusal.rate.trials, 0);
  EXPECT_EQ(before.refusal.unjudged, 4);
  // `kvsafe judge` re-judges the int4 answers with the keyword judge: now they count.
  {
    auto store = db::Store::open(path);
    const db::JudgeIdentity keyword = db::judge_identity("keyword:default:substring", "{\"kind\":\"keyword\"}");
    std::vector<db::JudgementRow> rows;
    for (std::int64_t id = 5; id <= 8; ++id) {
      rows.push_back({.generation_id = id, .refused = id == 5, .raw_output = "", .detail_json = "", .seconds = 0});
    }
    ASSERT_EQ(db::insert_judgements(*store, keyword, rows), 4);
  }
  const KvSummaryRow after =
      int4_row(summarize_run(path, {.min_baseline_refusals = 1, .judge = "keyword:default:substring"}));
  EXPECT_EQ(after.refusal.rate.successes, 1);
  EXPECT_EQ(after.refusal.rate.trials, 4);
  ASSERT_TRUE(after.flip.has_value());
  EXPECT_EQ(after.flip->successes, 3);
  // Without a judge, each generation's run verdict counts: 2 flips.
  EXPECT_EQ(int4_row(summarize_run(path, {.min_baseline_refusals = 1})).flip->successes, 2);

  // The tables refuse the mix unless a judge is named, and name the judges stored.
  try {
    choose_judge(path, "");
    ADD_FAILURE() << "a judge mix was accepted";
  } catch (const InputError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("keyword:default:substring (4 run verdicts, 4 re-judged)"), std::string::npos) << message;
    EXPECT_NE(message.find("model:wildguard (4 run verdicts)"), std::string::npos) << message;
    EXPECT_NE(message.find("--judge NAME"), std::string::npos) << message;
  }
  EXPECT_EQ(choose_judge(path, "model:wildguard"), std::optional<std::string>("model:wildguard"));
  EXPECT_THROW(choose_judge(path, "model:llama-guard"), InputError);
  const std::vector<Table> tables =
      database_tables(path, {.min_baseline_refusals = 1, .judge = "keyword:default:substring"});
  ASSERT_FALSE(tables.empty());
  EXPECT_EQ(tables.front().name, "advbench_main");
  EXPECT_EQ(std::get<RateCell>(tables.front().rows.at(0).at(5)).proportion.successes, 3);  // the keyword flips
}

// Judge outputs that did not parse and that the paper's rule counted as not refused are counted
// and named under the group's table.
TEST(SuiteTables, TheSummaryCountsUnparsedOutputsCountedAsNotRefused) {
  TempDir dir;
  const auto path = dir.path() / "unparsed.db";
  {
    auto store = db::Store::open(path);
    register_test_cells(*store, {cell("u-none", "none", 16, "refusal", "advbench", 3)});
    const db::ShardKey key{.cell_id = "u-none", .begin = 0, .end = 3};
    ASSERT_TRUE(store->claim_shard(key, "test"));
    db::ShardResult result{.shard = key};
    for (std::size_t i = 0; i < 3; ++i) {
      db::GenerationRow row = answer_row(i);
      row.refused = i == 0;
      row.judge_json = i == 2
                           ? R"({"harmful":true,"judge":"model:w","parsed":false,"unparsed_counted_as":"not_refused"})"
                           : R"({"harmful":true,"judge":"model:w","parsed":true})";
      result.generations.push_back(row);
    }
    store->commit_shard(result);
  }
  const RunSummary summary = summarize_run(path, {.min_baseline_refusals = 1});
  EXPECT_EQ(summary.groups.at(0).rows.at(0).unparsed_not_refused, 1);
  std::ostringstream out;
  write_run_summary(summary, out);
  EXPECT_NE(out.str().find("note: 1 judge output(s) did not parse and count as not refused"), std::string::npos)
      << out.str();
}

TEST(VerdictSql, AShareOfOneLabelByTwoJudgeSpecsIsRefused) {
  TempDir dir;
  const auto path = dir.path() / "labels.db";
  {
    auto store = db::Store::open(path);
    register_test_cells(*store, {cell("l-none", "none", 16, "refusal", "advbench", 2)});
    commit_answers(*store, "l-none", {1, 0}, {true, true});  // no judge label: a database from before it
    // Two `kvsafe judge` runs with different model files, both labelled "model:wildguard".
    for (const char* spec : {"{\"model\":\"a.gguf\"}", "{\"model\":\"b.gguf\"}"}) {
      const db::JudgeIdentity judge = db::judge_identity("model:wildguard", spec);
      const std::vector<db::JudgementRow> rows = {
          {.generation_id = 1, .refused = true, .raw_output = "", .detail_json = "", .seconds = 0}};
      ASSERT_EQ(db::insert_judgements(*store, judge, rows), 1);
    }
  }
  EXPECT_THROW(choose_judge(path, "model:wildguard"), InputError);
  // The unlabelled run verdicts can be picked by their listed name, and count.
  const std::vector<JudgeVerdictCount> judges = judges_with_verdicts(path);
  ASSERT_EQ(judges.size(), 2U);
  EXPECT_EQ(judges[0].label, kUnlabelledJudge);
  EXPECT_EQ(judges[1].rejudge_keys, 2);
  EXPECT_EQ(choose_judge(path, kUnlabelledJudge), std::optional<std::string>(kUnlabelledJudge));
  const RunSummary summary = summarize_run(path, {.min_baseline_refusals = 1, .judge = std::string(kUnlabelledJudge)});
  EXPECT_EQ(summary.groups.at(0).rows.at(0).refusal.rate.successes, 1);
  EXPECT_EQ(summary.groups.at(0).rows.at(0).refusal.rate.trials, 2);
}

}  // namespace
}  // namespace kvsafe::report
