// `profile: paper` (issue 20) and the judge keys it sets: the paper's keyword rule (its marker
// list, exact apostrophes, the spaceless fallback for Yi only), its rule for unparsed judge
// outputs, and whole batches per shard.

#include <gtest/gtest.h>

#include <string>

#include "orchestrator/cell_identity.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"
#include "orchestrator/model_system_prompt.h"

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

TEST(GridProfile, PaperStripsPromptsAndCleansAnswers) {
  const ParseResult paper = parse(kModels + "profile: paper\n");
  ASSERT_TRUE(paper.ok()) << paper.diagnostics.format();
  EXPECT_TRUE(paper.grid->generations.at(0).strip_prompts);
  EXPECT_TRUE(paper.grid->generations.at(0).clean_answers);
  EXPECT_TRUE(paper.grid->generations.at(0).paper_bos);
  EXPECT_FALSE(parse(kModels).grid->generations.at(0).paper_bos);
  EXPECT_FALSE(parse(kModels + "profile: paper\ngeneration: {bos: once}\n").grid->generations.at(0).paper_bos);
  EXPECT_NE(generation_identity_json(paper.grid->generations[0]).find("\"bos\":\"paper\""), std::string::npos);
  // Padding as the paper's transformers does it: the tokenizer's pad token, zero attention for
  // padding slots; each switchable.
  EXPECT_TRUE(paper.grid->generations.at(0).tokenizer_pad);
  EXPECT_TRUE(paper.grid->generations.at(0).zero_padding_queries);
  EXPECT_FALSE(parse(kModels).grid->generations.at(0).tokenizer_pad);
  EXPECT_FALSE(parse(kModels).grid->generations.at(0).zero_padding_queries);
  const ParseResult eos_padding =
      parse(kModels + "profile: paper\ngeneration: {pad_token: eos, padding_queries: attend_all}\n");
  ASSERT_TRUE(eos_padding.ok()) << eos_padding.diagnostics.format();
  EXPECT_FALSE(eos_padding.grid->generations.at(0).tokenizer_pad);
  EXPECT_FALSE(eos_padding.grid->generations.at(0).zero_padding_queries);
  const ParseResult bad = parse(kModels + "generation: {padding_queries: none}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.diagnostics.format().find("generation.padding_queries"), std::string::npos) << bad.diagnostics.format();
  EXPECT_EQ(generation_identity_json(parse(kModels).grid->generations[0]).find("pad"), std::string::npos);
  const ParseResult off = parse(kModels + "profile: paper\ngeneration: {clean_answers: false, seed: [0, 1]}\n");
  ASSERT_TRUE(off.ok()) << off.diagnostics.format();
  for (const GenerationSettings& g : off.grid->generations) {
    EXPECT_TRUE(g.strip_prompts);
    EXPECT_FALSE(g.clean_answers);
  }
  // In the cell id only when on.
  EXPECT_NE(generation_identity_json(paper.grid->generations[0]).find("\"strip_prompts\":true"), std::string::npos);
  EXPECT_EQ(generation_identity_json(parse(kModels).grid->generations[0]).find("strip_prompts"), std::string::npos);
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

TEST(GridProfile, NullGoesBackToTheBuiltInsAndPartBatchesOnlyMatterForGeneration) {
  const ParseResult keyword = parse(kModels + "profile: paper\njudge: {markers_file: null}\n");
  ASSERT_TRUE(keyword.ok()) << keyword.diagnostics.format();
  EXPECT_FALSE(keyword.grid->judge.markers_file.has_value());
  const ParseResult model =
      parse(kModels + "profile: paper\njudge: {kind: model, model: qwen2.5-7b, template_file: null}\n");
  ASSERT_TRUE(model.ok()) << model.diagnostics.format();
  EXPECT_FALSE(model.grid->judge.template_file.has_value());
  // Perplexity alone has no batches of answers: a shard size that is not whole batches is fine.
  const ParseResult ppl = parse(
      "name: t\nprofile: paper\nmodels: [{name: m, path: m}]\nkv_cache: [{scheme: none}]\n"
      "benchmarks: [{name: wikitext, task: perplexity}]\nexecution: {shard_size: 10}\n");
  EXPECT_TRUE(ppl.ok()) << ppl.diagnostics.format();
  // A run (files required) needs the data files the profile points the judge at.
  Environment env;
  env.data_dir = "/no/such/data";
  GridOptions run{.base_dir = "/grids"};
  run.require_model_files = true;
  const ParseResult missing = parse_grid_text(kModels + "profile: paper\n", "grid.yaml", env, run);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.diagnostics.format().find("/no/such/data/refusal_markers/paper_family_a.txt, which is missing"),
            std::string::npos)
      << missing.diagnostics.format();
}

// A cell of every new generation key and a model's own system prompt comes back from its
// canonical JSON with the same id (what MPI workers and resumed runs rely on).
TEST(GridProfile, NewKeysRoundTripThroughTheCanonicalJson) {
  const ParseResult result = parse(
      "name: t\nprofile: paper\nmodels:\n  - {name: m, path: m, system_prompt: \"On {date}.\", "
      "system_prompt_date: 2025-01-02}\nkv_cache: [{scheme: none}]\nbenchmarks: [advbench]\n"
      "generation: {temperature: 0.7, repetition_penalty: 1.05, top_k: 20}\n");
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  const std::vector<Cell> cells = expand_grid(*result.grid);
  ASSERT_FALSE(cells.empty());
  const std::string json = canonical_json(cells[0]);
  for (const char* key :
       {"\"bos\":\"paper\"", "\"strip_prompts\":true", "\"clean_answers\":true", "\"generation_config\":\"model\"",
        "\"pad_token\":\"tokenizer\"", "\"padding_queries\":\"zero\"", "\"repetition_penalty\":1.05", "\"top_k\":20",
        "\"system_prompt\":\"On 2025-01-02.\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
  }
  const Cell back = cell_from_canonical_json(json, *result.grid, cells[0].id);
  EXPECT_EQ(back.id, cells[0].id);
  EXPECT_TRUE(back.generation->paper_bos);
  EXPECT_TRUE(back.generation->tokenizer_pad);
  EXPECT_TRUE(back.generation->zero_padding_queries);
  EXPECT_EQ(*back.generation->top_k, 20);
}

// benchmarks[].max_new_tokens (issue 20 item 13): the paper gives IFEval 1024 new tokens and the
// safety benchmarks 256. The entry's cells generate that long; the others keep their cell ids.
TEST(GridProfile, ABenchmarkEntrysOwnGenerationLength) {
  const std::string head = "name: t\nmodels: [{name: m, path: m}]\nkv_cache: [{scheme: none}]\n";
  const ParseResult both = parse(head + "benchmarks: [advbench, {name: ifeval, max_new_tokens: 1024}]\n");
  ASSERT_TRUE(both.ok()) << both.diagnostics.format();
  const std::vector<Cell> cells = expand_grid(*both.grid);
  ASSERT_EQ(cells.size(), 2U);
  EXPECT_EQ(cells[0].generation->max_new_tokens, 256);
  EXPECT_EQ(cells[1].generation->max_new_tokens, 1024);
  EXPECT_EQ(cells[0].id, expand_grid(*parse(head + "benchmarks: [advbench]\n").grid).at(0).id);
  const Cell back = cell_from_canonical_json(canonical_json(cells[1]), *both.grid, cells[1].id);
  EXPECT_EQ(back.generation->max_new_tokens, 1024);
  const ParseResult ppl = parse(head + "benchmarks: [{name: wikitext, task: perplexity, max_new_tokens: 8}]\n");
  ASSERT_FALSE(ppl.ok());
  EXPECT_NE(ppl.diagnostics.format().find("max_new_tokens only applies to tasks that generate"), std::string::npos)
      << ppl.diagnostics.format();
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

// models[].system_prompt (issue 20 item 4): Mistral-Small-24B's default system prompt names the
// day; the grid pins it, and the prompt (date included) is part of the cell.
TEST(GridModelSystemPrompt, TheDatePlaceholdersBecomeThePinnedDate) {
  const ParseResult result = parse(
      "name: t\nmodels:\n"
      "  - {name: msmall, path: m, system_prompt: \"Today is {today}; yesterday was {yesterday}. {name} stays.\", "
      "system_prompt_date: 2025-03-01}\n"
      "  - {name: plain, path: p}\n"
      "kv_cache: [{scheme: none}]\nbenchmarks: [custom]\n");
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  EXPECT_EQ(*result.grid->models[0].system_prompt, "Today is 2025-03-01; yesterday was 2025-02-28. {name} stays.");
  EXPECT_FALSE(result.grid->models[1].system_prompt.has_value());
  // Part of the identity only when set: other models keep their cell ids.
  EXPECT_NE(model_identity_json(result.grid->models[0]).find("\"system_prompt\":\"Today is 2025-03-01"),
            std::string::npos);
  EXPECT_EQ(model_identity_json(result.grid->models[1]).find("system_prompt"), std::string::npos);
}

TEST(GridModelSystemPrompt, MistakesAreNamed) {
  const std::string head = "name: t\nmodels:\n  - {name: m, path: m, ";
  const std::string tail = "}\nkv_cache: [{scheme: none}]\nbenchmarks: [custom]\n";
  const ParseResult undated = parse(head + "system_prompt: \"It is {date}.\"" + tail);
  ASSERT_FALSE(undated.ok());
  EXPECT_NE(undated.diagnostics.format().find("pin the date with system_prompt_date"), std::string::npos)
      << undated.diagnostics.format();
  const ParseResult bad_date = parse(head + "system_prompt: \"It is {date}.\", system_prompt_date: 2025-02-30" + tail);
  ASSERT_FALSE(bad_date.ok());
  EXPECT_NE(bad_date.diagnostics.format().find("expected a date YYYY-MM-DD, got \"2025-02-30\""), std::string::npos)
      << bad_date.diagnostics.format();
  const ParseResult both = parse(head + "system_prompt: a, system_prompt_file: b.txt" + tail);
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.diagnostics.format().find("not both"), std::string::npos);
  GridOptions run_options{.base_dir = "/grids"};
  run_options.require_model_files = true;
  Environment env;
  const ParseResult missing =
      parse_grid_text(head + "system_prompt_file: /no/such/SYSTEM_PROMPT.txt" + tail, "grid.yaml", env, run_options);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.diagnostics.format().find("system prompt file not found: /no/such/SYSTEM_PROMPT.txt"),
            std::string::npos)
      << missing.diagnostics.format();
}

TEST(GridModelSystemPrompt, IsoDates) {
  EXPECT_EQ(parse_iso_date("2024-02-29"), std::optional<std::string>("2024-02-29"));
  EXPECT_FALSE(parse_iso_date("2023-02-29").has_value());
  EXPECT_FALSE(parse_iso_date("2023-2-01").has_value());
  EXPECT_EQ(substitute_prompt_date("{yesterday}", "2025-01-01"), "2024-12-31");
}

}  // namespace
}  // namespace kvsafe::orchestrator
