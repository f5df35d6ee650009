// generation.speculative (issue 22, "Speculative decoding"): the keys and their defaults, the
// draft resolved to its `models` entry (the cell's own model drafts for itself), the cell id
// changed only when the key is set (with the draft's model identity in it), tasks that do not
// generate untouched, and cell_from_canonical_json restoring the settings from this rank's grid.
// The errors (position, key path, message) are rows of grid_parser_errors_test.cpp.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "orchestrator/cell_identity.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"

namespace kvsafe::orchestrator {
namespace {

// Two models, one KV spec, one refusal benchmark and a perplexity one; `generation` is the
// generation section's body, indented by two spaces.
std::string grid_text(const std::string& generation, const std::string& draft_dtype = "auto") {
  std::string yaml =
      "name: spec\n"
      "models:\n"
      "  - {name: big, path: /models/big.gguf, chat_template: llama-2}\n"
      "  - {name: small, path: /models/small.gguf, dtype: " +
      draft_dtype +
      "}\n"
      "kv_cache:\n"
      "  - {scheme: int, bits: 4, granularity: per_token, symmetric: false}\n"
      "benchmarks:\n"
      "  - {name: advbench, limit: 4}\n"
      "  - {name: wikitext, limit: 2}\n";
  // Speculative cells decode one prompt at a time, and so must the plain cells beside them.
  if (!generation.empty()) yaml += "generation:\n  batch_size: 1\n" + generation;
  return yaml;
}

ParseResult parse(const std::string& yaml) {
  Environment env;
  env.model_cache_dir = "/mc";
  return parse_grid_text(yaml, "grid.yaml", env, {.base_dir = "/g"});
}

std::vector<Cell> cells_of(const std::string& yaml) {
  const ParseResult result = parse(yaml);
  EXPECT_TRUE(result.ok()) << yaml << "\n" << result.diagnostics.format();
  if (!result.ok()) return {};
  return expand_grid(*result.grid);
}

// The cell of model `model` on `benchmark` (one KV spec, one generation point).
const Cell& cell_of(const std::vector<Cell>& cells, const std::string& model, const std::string& benchmark) {
  for (const Cell& c : cells) {
    if (c.model.name == model && c.benchmark.name == benchmark) return c;
  }
  ADD_FAILURE() << "no cell " << model << " / " << benchmark;
  static const Cell none;
  return none;
}

TEST(GridSpeculative, ReadsTheKeysWithTheirDefaults) {
  const ParseResult result = parse(grid_text("  max_new_tokens: 32\n  speculative: {draft: small}\n"));
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  ASSERT_EQ(result.grid->generations.size(), 1U);
  const auto& spec = result.grid->generations[0].speculative;
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->draft.name, "small");
  EXPECT_EQ(spec->draft.path, "/models/small.gguf");
  EXPECT_EQ(spec->draft_tokens, 3);
  EXPECT_EQ(spec->quantize, SpeculativeQuantize::kTarget);

  const ParseResult full =
      parse(grid_text("  speculative:\n    draft: big\n    draft_tokens: 3\n    quantize: both\n"));
  ASSERT_TRUE(full.ok()) << full.diagnostics.format();
  const auto& self = full.grid->generations[0].speculative;
  ASSERT_TRUE(self.has_value());
  EXPECT_EQ(self->draft.name, "big");  // the cell's own model: self-drafting
  EXPECT_EQ(self->draft_tokens, 3);
  EXPECT_EQ(self->quantize, SpeculativeQuantize::kBoth);
  const ParseResult draft_only = parse(grid_text("  speculative: {draft: small, quantize: draft}\n"));
  ASSERT_TRUE(draft_only.ok()) << draft_only.diagnostics.format();
  EXPECT_EQ(draft_only.grid->generations[0].speculative->quantize, SpeculativeQuantize::kDraft);
  // null is no speculative decoding, as omitting the key; a greedy point of a one-value sweep is fine.
  const ParseResult null_key = parse(grid_text("  speculative: null\n  temperature: [0]\n"));
  ASSERT_TRUE(null_key.ok()) << null_key.diagnostics.format();
  EXPECT_FALSE(null_key.grid->generations[0].speculative.has_value());
}

TEST(GridSpeculative, TheCellIdChangesOnlyWhenSet) {
  const std::vector<Cell> plain = cells_of(grid_text("  max_new_tokens: 32\n"));
  const std::vector<Cell> unset = cells_of(grid_text("  max_new_tokens: 32\n  speculative: null\n"));
  const std::vector<Cell> spec = cells_of(grid_text("  max_new_tokens: 32\n  speculative: {draft: small}\n"));
  ASSERT_EQ(plain.size(), 4U);  // 2 models x (advbench + wikitext)
  ASSERT_EQ(spec.size(), 4U);
  for (std::size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].id, unset[i].id);
    EXPECT_EQ(canonical_json(plain[i]).find("speculative"), std::string::npos);
  }
  // Generating cells change; perplexity cells have no generation settings and keep their ids.
  EXPECT_NE(cell_of(plain, "big", "advbench").id, cell_of(spec, "big", "advbench").id);
  EXPECT_EQ(cell_of(plain, "big", "wikitext").id, cell_of(spec, "big", "wikitext").id);
  EXPECT_EQ(cell_of(plain, "small", "wikitext").id, cell_of(spec, "small", "wikitext").id);

  // The draft's whole model identity is written, never its path.
  const Cell& cell = cell_of(spec, "big", "advbench");
  EXPECT_NE(canonical_json(cell).find(R"("speculative":{"draft":{"chat_template":null,"dtype":"auto","name":"small"},)"
                                      R"("draft_tokens":3,"quantize":"target"})"),
            std::string::npos)
      << canonical_json(cell);

  // Each part of the settings is part of the id: k, the quantized side, the draft and its identity.
  const std::string id = cell.id;
  const auto id_with = [&](const std::string& section, const std::string& draft_dtype = "auto") {
    return cell_of(cells_of(grid_text(section, draft_dtype)), "big", "advbench").id;
  };
  EXPECT_EQ(id, id_with("  max_new_tokens: 32\n  speculative: {draft: small, draft_tokens: 3, quantize: target}\n"));
  EXPECT_NE(id, id_with("  max_new_tokens: 32\n  speculative: {draft: small, draft_tokens: 4}\n"));
  EXPECT_NE(id, id_with("  max_new_tokens: 32\n  speculative: {draft: small, quantize: draft}\n"));
  EXPECT_NE(id, id_with("  max_new_tokens: 32\n  speculative: {draft: small, quantize: both}\n"));
  EXPECT_NE(id, id_with("  max_new_tokens: 32\n  speculative: {draft: big}\n"));
  EXPECT_NE(id, id_with("  max_new_tokens: 32\n  speculative: {draft: small}\n", "float32"));
}

TEST(GridSpeculative, AListSweepsPlainAndSpeculativeDecodingSideBySide) {
  const ParseResult result =
      parse(grid_text("  system_prompt: [null, \"\"]\n"
                      "  speculative:\n"
                      "    - null\n"
                      "    - {draft: big, draft_tokens: 3}\n"
                      "    - {draft: big, draft_tokens: 3, quantize: draft}\n"
                      "    - {draft: big, draft_tokens: 3, quantize: target}\n"));
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  // The fourth repeats the second (quantize target is the default): a warning at its line.
  ASSERT_EQ(result.diagnostics.warnings().size(), 1U) << result.diagnostics.format();
  EXPECT_EQ(result.diagnostics.warnings()[0].line, 17);
  EXPECT_EQ(result.diagnostics.warnings()[0].key_path, "generation.speculative[3]");
  // Crossed with the system prompts, inside them: plain, target, draft for each.
  const std::vector<GenerationSettings>& g = result.grid->generations;
  ASSERT_EQ(g.size(), 6U);
  EXPECT_FALSE(g[0].speculative.has_value());
  EXPECT_EQ(g[1].speculative->quantize, SpeculativeQuantize::kTarget);
  EXPECT_EQ(g[2].speculative->quantize, SpeculativeQuantize::kDraft);
  EXPECT_FALSE(g[0].system_prompt.has_value());
  EXPECT_EQ(g[3].system_prompt, "");
  EXPECT_FALSE(g[3].speculative.has_value());
  // The plain point is the plain grid's cell.
  const std::vector<Cell> cells = expand_grid(*result.grid);
  const std::vector<Cell> plain = cells_of(grid_text("  system_prompt: [null, \"\"]\n"));
  EXPECT_EQ(cells.front().id, plain.front().id);

  // An item's errors name its index; an empty list sweeps nothing.
  const ParseResult bad = parse(grid_text("  speculative: [null, {draft: nope}]\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.diagnostics.errors().at(0).key_path, "generation.speculative[1].draft");
  const ParseResult empty = parse(grid_text("  speculative: []\n"));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.diagnostics.errors().at(0).message.find("an empty list sweeps nothing"), std::string::npos);
  // Sampling is refused even when only some values decode speculatively.
  const ParseResult sampled = parse(grid_text("  temperature: 0.7\n  speculative: [null, {draft: big}]\n"));
  ASSERT_FALSE(sampled.ok());
  EXPECT_EQ(sampled.diagnostics.errors().at(0).key_path, "generation.speculative");
}

TEST(GridSpeculative, CellFromCanonicalJsonRestoresTheSettings) {
  const ParseResult result = parse(grid_text("  speculative: {draft: small, draft_tokens: 2, quantize: draft}\n"));
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  for (const Cell& cell : expand_grid(*result.grid)) {
    const Cell back = cell_from_canonical_json(canonical_json(cell), *result.grid, cell.id);
    EXPECT_EQ(back.id, cell.id);
    ASSERT_EQ(back.generation.has_value(), cell.generation.has_value());
    if (!cell.generation) continue;
    ASSERT_TRUE(back.generation->speculative.has_value());
    EXPECT_EQ(back.generation->speculative->draft.name, "small");
    EXPECT_EQ(back.generation->speculative->draft.path, "/models/small.gguf");  // from this rank's grid
    EXPECT_EQ(back.generation->speculative->draft_tokens, 2);
    EXPECT_EQ(back.generation->speculative->quantize, SpeculativeQuantize::kDraft);
  }
  // A grid whose `small` is another model (another dtype) does not give the same cell: refused.
  const ParseResult other =
      parse(grid_text("  speculative: {draft: small, draft_tokens: 2, quantize: draft}\n", "bfloat16"));
  ASSERT_TRUE(other.ok()) << other.diagnostics.format();
  const std::vector<Cell> cells = expand_grid(*result.grid);
  const Cell& cell = cell_of(cells, "big", "advbench");
  EXPECT_THROW((void)cell_from_canonical_json(canonical_json(cell), *other.grid, cell.id), InputError);
}

}  // namespace
}  // namespace kvsafe::orchestrator

namespace kvsafe::orchestrator {
namespace {

// exclude's `draft` key (the draft model's name, "none" for plain decoding): a speculative sweep
// over two models can leave out one model's speculative cells and keep its plain ones.
TEST(GridSpeculative, ExcludeSelectsTheDraft) {
  const std::string yaml = grid_text("  speculative: [null, {draft: small}]\n") +
                           "exclude:\n  - {model: big, draft: small}\n  - {model: small, draft: none}\n";
  const std::vector<Cell> cells = cells_of(yaml);
  int big_plain = 0, big_speculative = 0, small_plain = 0, small_speculative = 0;
  for (const Cell& cell : cells) {
    if (!cell.generation) continue;  // wikitext
    const bool speculative = cell.generation->speculative.has_value();
    (cell.model.name == "big" ? (speculative ? big_speculative : big_plain)
                              : (speculative ? small_speculative : small_plain))++;
  }
  EXPECT_EQ(big_plain, 1);
  EXPECT_EQ(big_speculative, 0);
  EXPECT_EQ(small_plain, 0);
  EXPECT_EQ(small_speculative, 1);
  // A name that is neither a model nor "none" is most likely a typo: a warning says so.
  const ParseResult typo =
      parse(grid_text("  speculative: [null, {draft: small}]\n") + "exclude:\n  - {model: big, draft: smal}\n");
  ASSERT_TRUE(typo.ok()) << typo.diagnostics.format();
  EXPECT_NE(typo.diagnostics.format().find("no draft `smal` in this grid (did you mean `small`?)"), std::string::npos)
      << typo.diagnostics.format();
}

}  // namespace
}  // namespace kvsafe::orchestrator
