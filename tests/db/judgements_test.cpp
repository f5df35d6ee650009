// The judgements API on real SQLite files: paging through unjudged generations (with prompt
// text when registered), one transaction per inserted batch, resume (a judged row is skipped),
// rollback on a bad row, finding stored judges by label or key prefix, verdict lists.

#include "db/judgements.h"

#include <gtest/gtest.h>

#include "db/db_error.h"
#include "db/store.h"
#include "tests/db/db_test_util.h"

namespace kvsafe::db {
namespace {

using testing::TempDir;

// A database with one cell of 4 generations; prompts 0..2 are registered, prompt 3 is not.
std::unique_ptr<Store> make_store(const std::filesystem::path& path) {
  auto store = Store::open(path, StoreOptions{.take_writer_lock = false});
  const std::int64_t experiment = store->register_experiment(testing::make_experiment("paper"));
  std::vector<PromptRecord> prompts;
  for (std::int64_t i = 0; i < 3; ++i) {
    prompts.push_back({.prompt_index = i,
                       .prompt_id = "p" + std::to_string(i),
                       .text = "prompt " + std::to_string(i),
                       .harmful = i != 1});
  }
  store->register_prompts("advbench", "test", prompts);
  store->register_cells(experiment, {testing::make_cell("c1", 4)}, 4);
  const ShardKey shard{.cell_id = "c1", .begin = 0, .end = 4};
  EXPECT_TRUE(store->claim_shard(shard, "w"));
  store->commit_shard(testing::make_result(shard));
  return store;
}

TEST(Judgements, PagesInsertsAndResumes) {
  TempDir dir;
  auto store = make_store(dir / "r.db");
  const JudgeIdentity judge = judge_identity("keyword:default:substring", R"({"kind":"keyword"})");
  EXPECT_EQ(judge.key.size(), 64u);
  EXPECT_EQ(count_unjudged_generations(*store, judge.key), 4);

  const std::vector<StoredGeneration> first = read_unjudged_generations(*store, judge.key, 0, 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].cell_id, "c1");
  EXPECT_EQ(first[0].prompt_index, 0);
  EXPECT_EQ(first[0].prompt_text, "prompt 0");
  EXPECT_EQ(first[0].harmful, true);
  EXPECT_EQ(first[1].harmful, false);
  EXPECT_EQ(first[0].output_text, "I cannot help with that (0)");
  EXPECT_EQ(first[0].run_refused, true);
  const std::vector<StoredGeneration> second = read_unjudged_generations(*store, judge.key, first[1].id, 10);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[1].prompt_index, 3);
  EXPECT_EQ(second[1].prompt_text, std::nullopt);  // not registered
  EXPECT_EQ(second[1].harmful, std::nullopt);

  const std::vector<JudgementRow> rows = {
      {.generation_id = first[0].id, .refused = true, .raw_output = "I cannot", .seconds = 0.1},
      {.generation_id = first[1].id, .refused = std::nullopt, .raw_output = "garbage", .detail_json = R"({"e":1})"},
  };
  EXPECT_EQ(insert_judgements(*store, judge, rows), 2);
  EXPECT_EQ(insert_judgements(*store, judge, rows), 0);  // resume: already judged
  EXPECT_EQ(count_unjudged_generations(*store, judge.key), 2);
  const std::vector<StoredGeneration> left = read_unjudged_generations(*store, judge.key, 0, 10);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].id, second[0].id);

  // Another judge sees every generation as unjudged and adds rows beside the first one's.
  const JudgeIdentity other = judge_identity("model:x.gguf:wildguard", R"({"kind":"model"})");
  EXPECT_EQ(count_unjudged_generations(*store, other.key), 4);
  EXPECT_EQ(
      insert_judgements(*store, other,
                        std::vector<JudgementRow>{
                            {.generation_id = first[0].id, .refused = false, .raw_output = "Response refusal: no"}}),
      1);
  EXPECT_EQ(testing::count_rows(dir / "r.db", "judgements"), 3);
  // The run's own verdicts are untouched.
  EXPECT_EQ(testing::count_rows(dir / "r.db", "generations WHERE refused IS NOT NULL"), 4);
}

// A cell's index is not the benchmark's (a subset, a sample, samples per prompt): the judge reads
// the prompt the answer names, by id.
TEST(Judgements, APromptIsFoundByItsIdNotTheCellsIndex) {
  TempDir dir;
  auto store = make_store(dir / "r.db");
  const std::int64_t experiment = store->register_experiment(testing::make_experiment("sampled"));
  store->register_cells(experiment, {testing::make_cell("c2", 2)}, 2);
  const ShardKey shard{.cell_id = "c2", .begin = 0, .end = 2};
  ASSERT_TRUE(store->claim_shard(shard, "w"));
  ShardResult result{.shard = shard};
  for (std::int64_t i = 0; i < 2; ++i) {
    GenerationRow row = testing::make_generation(i);
    row.prompt_id = "p2";  // two samples of prompt p2 at cell indices 0 and 1
    result.generations.push_back(row);
  }
  store->commit_shard(result);
  const JudgeIdentity judge = judge_identity("keyword:default:substring", R"({"kind":"keyword"})");
  int seen = 0;
  for (const StoredGeneration& row : read_unjudged_generations(*store, judge.key, 0, 10)) {
    if (row.cell_id != "c2") continue;
    ++seen;
    EXPECT_EQ(row.prompt_text, "prompt 2") << row.prompt_index;
    EXPECT_EQ(row.harmful, true);
  }
  EXPECT_EQ(seen, 2);
}

TEST(Judgements, BadRowRollsBackTheWholeBatch) {
  TempDir dir;
  auto store = make_store(dir / "r.db");
  const JudgeIdentity judge = judge_identity("j", "{}");
  const std::vector<StoredGeneration> all = read_unjudged_generations(*store, judge.key, 0, 10);
  const std::vector<JudgementRow> rows = {{.generation_id = all[0].id, .refused = true, .raw_output = ""},
                                          {.generation_id = 999, .refused = true, .raw_output = ""}};
  EXPECT_THROW(insert_judgements(*store, judge, rows), DbError);
  EXPECT_EQ(testing::count_rows(dir / "r.db", "judgements"), 0);
  EXPECT_THROW(read_unjudged_generations(*store, judge.key, 0, 0), DbError);
  store.reset();
  auto read_only = Store::open(dir / "r.db", StoreOptions{.read_only = true});
  EXPECT_THROW(insert_judgements(*read_only, judge, std::span(rows).first(1)), DbError);
}

TEST(Judgements, FindsStoredJudgesAndTheirVerdicts) {
  TempDir dir;
  auto store = make_store(dir / "r.db");
  const JudgeIdentity a = judge_identity("keyword:default:substring", R"({"a":1})");
  const JudgeIdentity b = judge_identity("model:m.gguf:wildguard", R"({"b":1})");
  const JudgeIdentity b2 = judge_identity("model:m.gguf:wildguard", R"({"b":2})");  // same label, other spec
  const std::vector<StoredGeneration> all = read_unjudged_generations(*store, a.key, 0, 10);
  insert_judgements(*store, a,
                    std::vector<JudgementRow>{{.generation_id = all[1].id, .refused = false, .raw_output = ""},
                                              {.generation_id = all[0].id, .refused = true, .raw_output = "x"}});
  insert_judgements(*store, b, std::vector<JudgementRow>{{.generation_id = all[0].id, .raw_output = "?"}});
  insert_judgements(*store, b2, std::vector<JudgementRow>{{.generation_id = all[2].id, .refused = true}});

  const std::vector<StoredJudge> judges = list_stored_judges(*store);
  ASSERT_EQ(judges.size(), 3u);
  EXPECT_EQ(judges[0].identity.key, a.key);
  EXPECT_EQ(judges[0].rows, 2);
  EXPECT_EQ(judges[0].refused, 1);
  EXPECT_EQ(judges[1].unparsed, 1);
  EXPECT_EQ(judges[1].identity.json, R"({"b":1})");

  EXPECT_EQ(find_stored_judge(*store, "keyword:default:substring").identity.key, a.key);
  EXPECT_EQ(find_stored_judge(*store, b2.key.substr(0, 8)).identity.key, b2.key);
  EXPECT_THROW(find_stored_judge(*store, "model:m.gguf:wildguard"), DbError);  // two judges have it
  EXPECT_THROW(find_stored_judge(*store, a.key.substr(0, 4)), DbError);        // prefix too short
  try {
    find_stored_judge(*store, "nobody");
    FAIL();
  } catch (const DbError& error) {
    EXPECT_NE(std::string(error.what()).find("keyword:default:substring"), std::string::npos) << error.what();
  }

  const std::vector<StoredVerdict> verdicts = stored_verdicts(*store, a.key);
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_EQ(verdicts[0].generation_id, all[0].id);  // ordered by generation
  EXPECT_EQ(verdicts[0].refused, true);
  EXPECT_EQ(stored_verdicts(*store, b.key)[0].refused, std::nullopt);
  const std::vector<StoredVerdict> run = run_verdicts(*store);
  ASSERT_EQ(run.size(), 4u);
  EXPECT_EQ(run[0].refused, true);  // make_generation: even prompts refused
  EXPECT_EQ(run[1].refused, false);
}

}  // namespace
}  // namespace kvsafe::db
