// `profile: paper` (issue 20) and the judge keys it sets: the paper's keyword rule (its marker
// list, exact apostrophes, the spaceless fallback for Yi only), its rule for unparsed judge
// outputs, and whole batches per shard.

#include <gtest/gtest.h>

#include <string>

#include "orchestrator/grid_parser.h"

namespace kvsafe::orchestrator {
namespace {

ParseResult parse(const std::string& yaml) {
  Environment env;
  env.data_dir = "/data";
  return parse_grid_text(yaml, "grid.yaml", env, {.base_dir = "/grids"});
}

const std::string kModels =
    "name: t\n"
    "models:\n"
    "  - {name: Yi-1.5-9B-Chat, path: yi.gguf}\n"
    "  - {name: qwen2.5-7b, path: qwen.gguf}\n"
    "kv_cache: [{scheme: none}]\n"
    "benchmarks: [custom]\n";

TEST(GridProfile, KvsafeIsTheDefaultAndChangesNothing) {
  const ParseResult result = parse(kModels);
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  const GridSpec& grid = *result.grid;
  EXPECT_EQ(grid.profile, GridProfile::kKvsafe);
  EXPECT_FALSE(grid.judge.markers_file.has_value());
  EXPECT_FALSE(grid.judge.exact_apostrophes);
  EXPECT_TRUE(grid.judge.strip_spaces_models.empty());
  EXPECT_EQ(grid.judge.unparsed, UnparsedVerdict::kUnjudged);
}

TEST(GridProfile, PaperSetsThePapersJudgeRule) {
  const ParseResult result = parse(kModels + "profile: paper\n");
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  const GridSpec& grid = *result.grid;
  EXPECT_EQ(grid.profile, GridProfile::kPaper);
  EXPECT_EQ(*grid.judge.markers_file, std::filesystem::path("/data/refusal_markers/paper_family_a.txt"));
  EXPECT_TRUE(grid.judge.exact_apostrophes);
  EXPECT_FALSE(grid.judge.strip_spaces_fallback);
  EXPECT_EQ(grid.judge.strip_spaces_models, (std::vector<std::string>{"Yi-1.5-9B-Chat"}));
  EXPECT_EQ(grid.judge.unparsed, UnparsedVerdict::kNotRefused);
}

TEST(GridProfile, ExplicitJudgeKeysOverrideTheProfile) {
  const ParseResult result =
      parse(kModels + "profile: paper\njudge: {strip_spaces_fallback: true, apostrophes: normalize}\n");
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  EXPECT_TRUE(result.grid->judge.strip_spaces_fallback);
  EXPECT_TRUE(result.grid->judge.strip_spaces_models.empty());
  EXPECT_FALSE(result.grid->judge.exact_apostrophes);
  const ParseResult model =
      parse(kModels + "profile: paper\njudge: {kind: model, model: qwen2.5-7b, unparsed: unjudged}\n");
  ASSERT_TRUE(model.ok()) << model.diagnostics.format();
  EXPECT_EQ(model.grid->judge.unparsed, UnparsedVerdict::kUnjudged);
  // The paper's WildGuard prompt unless the grid names one.
  EXPECT_EQ(*model.grid->judge.template_file,
            std::filesystem::path("/data/refusal_markers/judge_prompts/wildguard_paper.txt"));
  const ParseResult own =
      parse(kModels + "profile: paper\njudge: {kind: model, model: qwen2.5-7b, template_file: mine.txt}\n");
  ASSERT_TRUE(own.ok()) << own.diagnostics.format();
  EXPECT_EQ(*own.grid->judge.template_file, std::filesystem::path("/grids/mine.txt"));
  EXPECT_FALSE(parse(kModels + "judge: {kind: model, model: qwen2.5-7b}\n").grid->judge.template_file.has_value());
}

TEST(GridProfile, SpacelessFallbackForNamedModels) {
  const ParseResult result = parse(kModels + "judge: {strip_spaces_fallback: [qwen2.5-7b]}\n");
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  EXPECT_EQ(result.grid->judge.strip_spaces_models, (std::vector<std::string>{"qwen2.5-7b"}));
  const ParseResult unknown = parse(kModels + "judge: {strip_spaces_fallback: [yi-34b]}\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.diagnostics.format().find("judge.strip_spaces_fallback[0]"), std::string::npos)
      << unknown.diagnostics.format();
  EXPECT_NE(unknown.diagnostics.format().find("`yi-34b` is not one of the grid's models"), std::string::npos);
}

TEST(GridProfile, JudgeKeysOfTheOtherKindAndUnknownValuesAreErrors) {
  const ParseResult unparsed = parse(kModels + "judge: {unparsed: not_refused}\n");
  ASSERT_FALSE(unparsed.ok());
  EXPECT_NE(unparsed.diagnostics.format().find("unparsed only applies to kind: model"), std::string::npos)
      << unparsed.diagnostics.format();
  const ParseResult profile = parse(kModels + "profile: papr\n");
  ASSERT_FALSE(profile.ok());
  EXPECT_NE(profile.diagnostics.format().find("paper"), std::string::npos) << profile.diagnostics.format();
}

TEST(GridProfile, ShardsOfPartBatchesWarnAndThePaperProfileRefusesThem) {
  const std::string grid = kModels + "generation: {batch_size: 4}\nexecution: {shard_size: 10}\n";
  const ParseResult warned = parse(grid);
  ASSERT_TRUE(warned.ok()) << warned.diagnostics.format();
  EXPECT_NE(warned.diagnostics.format().find("shard_size 10 is not a multiple of batch_size 4"), std::string::npos)
      << warned.diagnostics.format();
  const ParseResult refused = parse(grid + "profile: paper\n");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.diagnostics.format().find("(profile: paper runs whole batches)"), std::string::npos);
  EXPECT_TRUE(parse(kModels + "generation: {batch_size: 4}\nexecution: {shard_size: 32}\n").diagnostics.empty());
}

}  // namespace
}  // namespace kvsafe::orchestrator
