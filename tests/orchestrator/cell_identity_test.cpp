// Cell identity: the same grid written differently gives the same ids; every semantic
// change gives new ones; a few ids are pinned so the canonical form cannot drift.

#include <gtest/gtest.h>

#include <set>

#include "common/sha256.h"
#include "orchestrator/cell_identity.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"

namespace kvsafe::orchestrator {
namespace {

std::vector<Cell> cells_of(const std::string& yaml) {
  Environment env;
  env.model_cache_dir = "/mc";
  const ParseResult result = parse_grid_text(yaml, "grid.yaml", env, {.base_dir = "/g"});
  EXPECT_TRUE(result.ok()) << yaml << "\n" << result.diagnostics.format();
  if (!result.ok()) return {};
  return expand_grid(*result.grid);
}

std::vector<std::string> ids_of(const std::string& yaml) {
  std::vector<std::string> ids;
  for (const Cell& c : cells_of(yaml)) ids.push_back(c.id);
  return ids;
}

// Block style, every default written out, comments.
const std::string kExplicit = R"(# a grid with everything spelled out
name: ids
description: "explicit"
models:
  - name: m
    path: /models/m.gguf       # not part of the id
    chat_template: null
    dtype: auto
    params: 7B
kv_cache:
  - scheme: none
  - scheme: int
    bits: [4]                  # a one-element sweep is the value itself
    symmetric: false
    granularity: per_token
    placement: projection
    residual: 0
    protect_layers: [2, 0]
    outlier_channels: 0
benchmarks:
  - name: advbench
    task: refusal
    limit: 100
    seed: 0
generation:
  max_new_tokens: 256
  batch_size: 4
  temperature: 0
  top_p: 1
  seed: 0
  system_prompt: null
)";

// The same grid: flow style, other key order, defaults omitted, 0.00 for 0, another path,
// key_/value_granularity instead of granularity, `int` bits 16 instead of `none`.
const std::string kTerse =
    "{kv_cache: [{scheme: int, bits: 16}, {protect_layers: [0, 2, 2], bits: 4, scheme: int, key_granularity: "
    "per_token, "
    "value_granularity: per_token}],\n"
    " benchmarks: [{limit: 100, name: advbench}], generation: {temperature: 0.00, top_p: 1.0},\n"
    " models: [{path: /elsewhere/m, name: m}], name: other-name}\n";

TEST(CellIdentity, SameGridWrittenDifferentlyGivesTheSameIds) {
  const std::vector<std::string> a = ids_of(kExplicit);
  const std::vector<std::string> b = ids_of(kTerse);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a, b);
}

TEST(CellIdentity, CanonicalJsonIsPinned) {
  const std::vector<Cell> cells = cells_of(kExplicit);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(
      canonical_json(cells[0]),
      R"({"benchmark":{"limit":100,"name":"advbench","sample":null},)"
      R"("generation":{"batch_size":4,"max_new_tokens":256,"seed":0,"system_prompt":null,"temperature":0.0,"top_p":1.0},)"
      R"("kv":{"scheme":"none"},)"
      R"("model":{"chat_template":null,"dtype":"auto","name":"m"},"task":"refusal","version":1})");
  EXPECT_EQ(canonical_json(cells[1].kv),
            R"({"bits":4,"key_granularity":"per_token","outlier_channels":0,"placement":"projection",)"
            R"("protect_layers":[0,2],"residual":0,"scheme":"int","symmetric":false,"value_granularity":"per_token"})");
  for (const Cell& c : cells) {
    EXPECT_EQ(c.id, sha256_hex(canonical_json(c)));
    EXPECT_EQ(c.id.size(), 64u);
    EXPECT_EQ(c.short_id(), c.id.substr(0, 16));
  }
}

TEST(CellIdentity, GoldenIds) {
  // If this fails, the canonical form changed: every stored result would lose its cell.
  // Change it only on purpose, with kCellFormatVersion bumped. (Checked independently:
  // Python hashlib.sha256 of the canonical JSON texts pinned in CanonicalJsonIsPinned.)
  const std::vector<Cell> cells = cells_of(kExplicit);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0].id, "aa28ada03154e54ea053bed36fcc5df0e26568015207d88fd0a92bd1e223f29e");
  EXPECT_EQ(cells[1].id, "6d4575ccad108ce55128acc9989dd25e9b4564afe7d97a7b9e344b42e1a939db");
  const std::vector<Cell> ppl = cells_of(
      "name: p\nmodels: [{name: mistral-7b, path: x, dtype: bfloat16, chat_template: mistral}]\n"
      "kv_cache: [{scheme: kivi, bits: 2}]\n"
      "benchmarks: [{name: wikitext, max_length: 2048, stride: 512}]\n");
  ASSERT_EQ(ppl.size(), 1u);
  EXPECT_EQ(
      canonical_json(ppl[0]),
      R"({"benchmark":{"limit":null,"max_length":2048,"name":"wikitext","sample":null,"stride":512},)"
      R"("generation":null,"kv":{"bits":2,"group_size":32,"outlier_channels":0,"placement":"projection",)"
      R"("protect_layers":[],"residual":128,"scheme":"kivi"},)"
      R"("model":{"chat_template":"mistral","dtype":"bfloat16","name":"mistral-7b"},"task":"perplexity","version":1})");
  EXPECT_EQ(ppl[0].id, "b380cbca28c4ecf13ac84eefeb3766ff6ee69322064f532dac34da1db9ea35e8");
}

TEST(CellIdentity, EverySemanticChangeGivesANewId) {
  const std::string base =
      "name: t\nmodels: [{name: m, path: p}]\n"
      "kv_cache: [{scheme: int, bits: 4}]\n"
      "benchmarks: [{name: advbench, limit: 100}]\n"
      "generation: {max_new_tokens: 256}\n";
  const auto variant = [&](const std::string& from, const std::string& to) {
    std::string yaml = base;
    const std::size_t at = yaml.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return yaml.replace(at, from.size(), to);
  };
  const std::vector<std::string> yamls = {
      base,
      variant("bits: 4}", "bits: 3}"),
      variant("bits: 4}", "bits: 4, symmetric: true}"),
      variant("bits: 4}", "bits: 4, granularity: per_tensor}"),
      variant("bits: 4}", "bits: 4, protect_layers: [0]}"),
      variant("bits: 4}", "bits: 4, placement: cache}"),
      variant("limit: 100", "limit: 99"),
      variant("limit: 100", "limit: 100, sample: 50"),
      variant("{name: advbench, limit: 100}", "{name: harmbench, limit: 100}"),
      variant("{name: m, path: p}", "{name: m2, path: p}"),
      variant("{name: m, path: p}", "{name: m, path: p, dtype: float16}"),
      variant("{name: m, path: p}", "{name: m, path: p, chat_template: chatml}"),
      variant("max_new_tokens: 256", "max_new_tokens: 128"),
      variant("max_new_tokens: 256", "max_new_tokens: 256, seed: 1"),
      variant("max_new_tokens: 256", "max_new_tokens: 256, batch_size: 8"),
      variant("max_new_tokens: 256", "max_new_tokens: 256, temperature: 0.7"),
      variant("max_new_tokens: 256", "max_new_tokens: 256, top_p: 0.9"),
      variant("max_new_tokens: 256", "max_new_tokens: 256, system_prompt: \"Be safe.\""),
  };
  std::set<std::string> ids;
  for (const std::string& yaml : yamls) {
    const std::vector<std::string> one = ids_of(yaml);
    ASSERT_EQ(one.size(), 1u) << yaml;
    EXPECT_TRUE(ids.insert(one[0]).second) << "same id as another variant:\n" << yaml;
  }
  // Things that are not part of the identity: the path, the judge, execution settings,
  // the grid's name, the benchmark seed without a sample.
  const std::string same = ids_of(base)[0];
  EXPECT_EQ(ids_of(variant("{name: m, path: p}", "{name: m, path: q, params: 7B, layers: 32}"))[0], same);
  EXPECT_EQ(ids_of(variant("name: t\n", "name: u\njudge: {kind: keyword}\nexecution: {shard_size: 8}\n"))[0], same);
  EXPECT_EQ(ids_of(variant("limit: 100", "limit: 100, seed: 7"))[0], same);
}

}  // namespace
}  // namespace kvsafe::orchestrator
