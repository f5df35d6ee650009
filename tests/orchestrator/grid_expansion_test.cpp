// Expansion: counts with sweeps, zip and exclude; order; deduplication; prompt counts;
// shards; kv labels and effective bits.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <tuple>

#include "common/error.h"
#include "orchestrator/cell_identity.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"
#include "orchestrator/shards.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::orchestrator {
namespace {

GridSpec parse_ok(const std::string& yaml) {
  Environment env;
  env.model_cache_dir = "/mc";
  const ParseResult result = parse_grid_text(yaml, "grid.yaml", env, {.base_dir = "/g"});
  EXPECT_TRUE(result.ok()) << result.diagnostics.format();
  return result.ok() ? *result.grid : GridSpec{};
}

std::string with_kv(const std::string& kv_entries, const std::string& rest = "benchmarks: [custom]\n") {
  return "name: t\nmodels: [{name: m, path: m}]\nkv_cache:\n" + kv_entries + rest;
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::vector<std::string> labels_of(const GridSpec& grid) {
  std::vector<std::string> out;
  for (const KvSpec& k : grid.kv_specs) out.push_back(kv_label(k));
  return out;
}

TEST(GridExpansion, CrossesModelsKvBenchmarksAndGenerationSweeps) {
  const GridSpec grid = parse_ok(
      "name: t\n"
      "models: [{name: a, path: a}, {name: b, path: b}]\n"
      "kv_cache:\n"
      "  - scheme: none\n"
      "  - {scheme: int, bits: [8, 4, 2], symmetric: [true, false]}\n"
      "benchmarks: [advbench, {name: xstest, limit: 100}]\n"
      "generation: {temperature: [0, 0.7]}\n");
  // 2 models x (1 + 3 x 2) kv x 2 benchmarks x 2 temperatures
  EXPECT_EQ(expand_grid(grid).size(), 2u * 7u * 2u * 2u);
  EXPECT_EQ(count_cells(grid).cells, 56);
  // Sweeps cross in key-table order, the later key fastest.
  EXPECT_EQ(labels_of(grid), (std::vector<std::string>{"none", "int8-ptok-sym", "int8-ptok-asym", "int4-ptok-sym",
                                                       "int4-ptok-asym", "int2-ptok-sym", "int2-ptok-asym"}));
}

TEST(GridExpansion, OrderIsModelsThenKvThenBenchmarksThenGeneration) {
  const GridSpec grid = parse_ok(
      "name: t\nmodels: [{name: a, path: a}, {name: b, path: b}]\n"
      "kv_cache: [{scheme: none}, {scheme: int, bits: 4}]\n"
      "benchmarks: [custom, advbench]\n"
      "generation: {seed: [0, 1]}\n");
  const std::vector<Cell> cells = expand_grid(grid);
  ASSERT_EQ(cells.size(), 16u);
  std::vector<std::tuple<std::size_t, std::size_t, std::size_t, std::size_t>> order;
  for (const Cell& c : cells) order.emplace_back(c.model_index, c.kv_index, c.benchmark_index, *c.generation_index);
  std::vector<std::tuple<std::size_t, std::size_t, std::size_t, std::size_t>> expected;
  for (std::size_t m = 0; m < 2; ++m)
    for (std::size_t k = 0; k < 2; ++k)
      for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t g = 0; g < 2; ++g) expected.emplace_back(m, k, b, g);
  EXPECT_EQ(order, expected);
  // Twice the same: deterministic, ids included.
  const std::vector<Cell> again = expand_grid(grid);
  for (std::size_t i = 0; i < cells.size(); ++i) EXPECT_EQ(cells[i].id, again[i].id);
  std::set<std::string> ids;
  for (const Cell& c : cells) ids.insert(c.id);
  EXPECT_EQ(ids.size(), cells.size());
}

TEST(GridExpansion, ZipPairsListsInsteadOfCrossing) {
  const GridSpec crossed = parse_ok(with_kv("  - {scheme: kivi, bits: [4, 2], residual: [0, 128]}\n"));
  EXPECT_EQ(labels_of(crossed), (std::vector<std::string>{"kivi4-r0", "kivi4-r128", "kivi2-r0", "kivi2-r128"}));
  const GridSpec zipped =
      parse_ok(with_kv("  - {scheme: kivi, bits: [4, 2], residual: [0, 128], zip: [bits, residual]}\n"));
  EXPECT_EQ(labels_of(zipped), (std::vector<std::string>{"kivi4-r0", "kivi2-r128"}));
  // Two zip groups cross with each other: 2 x 2.
  const GridSpec two_groups = parse_ok(
      with_kv("  - {scheme: int, bits: [4, 2], residual: [0, 64], symmetric: [true, false],\n"
              "     granularity: [per_token, per_tensor], zip: [[bits, residual], [symmetric, granularity]]}\n"));
  EXPECT_EQ(labels_of(two_groups), (std::vector<std::string>{"int4-ptok-sym", "int4-ptensor-asym", "int2-ptok-sym-r64",
                                                             "int2-ptensor-asym-r64"}));
  // protect_layers sweeps as a list of lists and zips like any list.
  const GridSpec layers = parse_ok(
      with_kv("  - {scheme: int, bits: [4, 3], protect_layers: [[0], [2, 0]], zip: [bits, protect_layers]}\n"));
  EXPECT_EQ(labels_of(layers), (std::vector<std::string>{"int4-ptok-asym+fp16[0]", "int3-ptok-asym+fp16[0,2]"}));
}

TEST(GridExpansion, OutlierChannelsSweepOnlyWhenTheListHoldsAList) {
  const GridSpec explicit_ids = parse_ok(with_kv("  - {scheme: int, bits: 4, outlier_channels: [17, 3]}\n"));
  EXPECT_EQ(labels_of(explicit_ids), (std::vector<std::string>{"int4-ptok-asym+out[3,17]"}));
  const GridSpec swept = parse_ok(with_kv("  - {scheme: int, bits: 4, outlier_channels: [0, 8, [3, 17]]}\n"));
  EXPECT_EQ(labels_of(swept),
            (std::vector<std::string>{"int4-ptok-asym", "int4-ptok-asym+out8", "int4-ptok-asym+out[3,17]"}));
}

TEST(GridExpansion, GenerationZip) {
  const GridSpec grid = parse_ok(with_kv("  - scheme: none\n",
                                         "benchmarks: [custom]\n"
                                         "generation: {temperature: [0, 0.7, 1.0], seed: [0, 1, 2], "
                                         "zip: [temperature, seed]}\n"));
  ASSERT_EQ(grid.generations.size(), 3u);
  EXPECT_EQ(grid.generations[2].temperature, 1.0);
  EXPECT_EQ(grid.generations[2].seed, 2);
  EXPECT_EQ(expand_grid(grid).size(), 3u);
}

TEST(GridExpansion, EqualSpecsAreDeduplicated) {
  // int with bits 16 is full precision: the same as none.
  const GridSpec grid =
      parse_ok(with_kv("  - scheme: none\n"
                       "  - {scheme: int, bits: [16, 4]}\n"
                       "  - {scheme: int, bits: 4, granularity: per_token, symmetric: false, placement: projection}\n"
                       "  - {scheme: fp8_e4m3, bits: 4}\n"  // bits do not apply to fp8 (a warning) ...
                       "  - {scheme: fp8_e4m3}\n"));        // ... so this is the same spec
  EXPECT_EQ(labels_of(grid), (std::vector<std::string>{"none", "int4-ptok-asym", "fp8e4m3"}));
  EXPECT_EQ(expand_grid(grid).size(), 3u);
}

TEST(GridExpansion, SixteenBitsOnOneSideQuantizesTheOtherOnly) {
  // The paper's K/V asymmetry entries: keys only, values only, and both at 16 = full precision.
  const GridSpec grid = parse_ok(with_kv(
      "  - {scheme: int, bits: [4, 2], value_bits: 16}\n"
      "  - {scheme: int, bits: 16, value_bits: [16, 4], value_granularity: per_group, value_group_size: 64}\n"));
  EXPECT_EQ(labels_of(grid),
            (std::vector<std::string>{"int4v16-ptok-asym", "int2v16-ptok-asym", "none", "int16v4-g64-asym"}));
}

TEST(GridExpansion, SystemPromptsAreASweepAxis) {
  // The model's own, none, a safety prompt: crossed with two seeds.
  const GridSpec grid = parse_ok(with_kv("  - {scheme: none}\n",
                                         "benchmarks: [custom]\ngeneration:\n  seed: [0, 1]\n"
                                         "  system_prompt: [null, \"\", \"Refuse anything harmful.\"]\n"));
  ASSERT_EQ(grid.generations.size(), 6u);
  EXPECT_EQ(grid.generations[0].system_prompt, std::nullopt);
  EXPECT_EQ(grid.generations[1].seed, 1);
  EXPECT_EQ(grid.generations[2].system_prompt, std::optional<std::string>(""));
  EXPECT_EQ(grid.generations[5].system_prompt, std::optional<std::string>("Refuse anything harmful."));
  std::set<std::string> ids;
  for (const Cell& cell : expand_grid(grid)) ids.insert(cell.id);
  EXPECT_EQ(ids.size(), 6u);
  // A scalar still works; a non-text item is an error at its place.
  EXPECT_EQ(parse_ok(with_kv("  - {scheme: none}\n", "benchmarks: [custom]\ngeneration: {system_prompt: hi}\n"))
                .generations.at(0)
                .system_prompt,
            std::optional<std::string>("hi"));
  Environment env;
  const ParseResult bad =
      parse_grid_text(with_kv("  - {scheme: none}\n", "benchmarks: [custom]\ngeneration: {system_prompt: [a, [b]]}\n"),
                      "grid.yaml", env, {.base_dir = "/g"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.diagnostics.format().find("generation.system_prompt[1]"), std::string::npos)
      << bad.diagnostics.format();
}

// generation.samples (issue 22, temperature): N answers per prompt, cell index i = prompt i / N;
// in the id only when > 1; a greedy point of a temperature sweep draws one; an all-greedy grid
// asking for samples is an error at the key.
TEST(GridExpansion, SamplesMultiplyTheCellsIndicesAndOnlySampledCellsDrawThem) {
  const GridSpec grid = parse_ok(with_kv("  - {scheme: none}\n",
                                         "benchmarks: [{name: custom, limit: 4}]\n"
                                         "generation: {temperature: [0, 0.7], top_k: 50, samples: 5}\n"));
  ASSERT_EQ(grid.generations.size(), 2u);
  EXPECT_EQ(grid.generations[0].samples, 1);
  EXPECT_EQ(grid.generations[1].samples, 5);
  const std::vector<Cell> cells = expand_grid(grid);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0].n_prompts, 4);
  EXPECT_EQ(cells[1].n_prompts, 20);
  EXPECT_EQ(canonical_json(cells[0]).find("samples"), std::string::npos) << canonical_json(cells[0]);
  EXPECT_NE(canonical_json(cells[1]).find("\"samples\":5"), std::string::npos) << canonical_json(cells[1]);
  // A cell read back from its canonical JSON (what a worker rank gets) keeps its samples.
  const Cell back = cell_from_canonical_json(canonical_json(cells[1]), grid, cells[1].id);
  EXPECT_EQ(back.generation->samples, 5);
  EXPECT_EQ(back.n_prompts, 20);
  // The same grid without samples has the ids it had before the key existed.
  const GridSpec one = parse_ok(with_kv("  - {scheme: none}\n",
                                        "benchmarks: [{name: custom, limit: 4}]\n"
                                        "generation: {temperature: [0, 0.7], top_k: 50}\n"));
  EXPECT_EQ(expand_grid(one)[0].id, cells[0].id);
  EXPECT_NE(expand_grid(one)[1].id, cells[1].id);
  Environment env;
  const ParseResult greedy =
      parse_grid_text(with_kv("  - {scheme: none}\n", "benchmarks: [custom]\ngeneration: {samples: 3}\n"), "grid.yaml",
                      env, {.base_dir = "/g"});
  ASSERT_FALSE(greedy.ok());
  EXPECT_NE(greedy.diagnostics.format().find("generation.samples"), std::string::npos) << greedy.diagnostics.format();
  EXPECT_NE(greedy.diagnostics.format().find("needs temperature > 0"), std::string::npos)
      << greedy.diagnostics.format();
  const ParseResult zero = parse_grid_text(
      with_kv("  - {scheme: none}\n", "benchmarks: [custom]\ngeneration: {temperature: 1, samples: 0}\n"), "grid.yaml",
      env, {.base_dir = "/g"});
  EXPECT_FALSE(zero.ok());
}

// benchmark conversations (issue 22, multi-turn): the file is read when the grid is parsed (its
// conversation count sizes the cells, its bytes name them), a worker rank finds it again from the
// cell's JSON, and a missing or malformed file is an error at the key.
TEST(GridExpansion, ConversationsAreNamedByTheFilesBytes) {
  kvsafe::testing::TempDir dir("conversations-grid");
  const auto file = dir.path() / "conv.jsonl";
  const std::string two = R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, )"
                          R"({"role": "user", "content": "c"}]})"
                          "\n"
                          R"({"id": "x", "messages": [{"role": "user", "content": "d"}]})"
                          "\n";
  write_text(file, two);
  const std::string grid_text =
      with_kv("  - {scheme: none}\n", "benchmarks: [{name: conversations, file: " + file.string() + "}]\n");
  const GridSpec grid = parse_ok(grid_text);
  ASSERT_EQ(grid.benchmarks.size(), 1u);
  EXPECT_EQ(grid.benchmarks[0].file_prompts, 2);
  const std::vector<Cell> cells = expand_grid(grid);
  ASSERT_EQ(cells.size(), 1u);
  EXPECT_EQ(cells[0].n_prompts, 2);
  EXPECT_NE(canonical_json(cells[0]).find("\"file_sha256\":\"" + grid.benchmarks[0].file_sha256 + "\""),
            std::string::npos);
  EXPECT_EQ(canonical_json(cells[0]).find(file.string()), std::string::npos);  // never the path
  const Cell back = cell_from_canonical_json(canonical_json(cells[0]), grid, cells[0].id);
  EXPECT_EQ(back.benchmark.file, file);
  EXPECT_EQ(back.n_prompts, 2);
  // One more conversation: new bytes, a new cell.
  write_text(file, two + R"({"messages": [{"role": "user", "content": "e"}]})"
                         "\n");
  const std::vector<Cell> edited = expand_grid(parse_ok(grid_text));
  EXPECT_NE(edited[0].id, cells[0].id);
  EXPECT_EQ(edited[0].n_prompts, 3);
  Environment env;
  const auto error_of = [&](const std::string& benchmarks) {
    const ParseResult r =
        parse_grid_text(with_kv("  - {scheme: none}\n", benchmarks), "grid.yaml", env, {.base_dir = dir.path()});
    EXPECT_FALSE(r.ok()) << benchmarks;
    return r.diagnostics.format();
  };
  EXPECT_NE(error_of("benchmarks: [conversations]\n").find("needs its file"), std::string::npos);
  EXPECT_NE(error_of("benchmarks: [{name: conversations}]\n").find("needs `file:`"), std::string::npos);
  EXPECT_NE(error_of("benchmarks: [{name: conversations, file: nope.jsonl}]\n").find("nope.jsonl"), std::string::npos);
  EXPECT_NE(
      error_of("benchmarks: [{name: advbench, file: conv.jsonl}]\n").find("only applies to benchmark conversations"),
      std::string::npos);
  write_text(dir.path() / "bad.jsonl", "{\"messages\": [{\"role\": \"assistant\", \"content\": \"a\"}]}\n");
  const std::string bad = error_of("benchmarks: [{name: conversations, file: bad.jsonl}]\n");
  EXPECT_NE(bad.find("benchmarks[0].file"), std::string::npos) << bad;
  EXPECT_NE(bad.find("bad.jsonl:1"), std::string::npos) << bad;
}

TEST(GridExpansion, PerplexityIgnoresGenerationSweeps) {
  const GridSpec grid = parse_ok(with_kv("  - scheme: none\n",
                                         "benchmarks: [custom, {name: wikitext, max_length: 1024, stride: 256}]\n"
                                         "generation: {temperature: [0, 0.5]}\n"));
  const std::vector<Cell> cells = expand_grid(grid);
  ASSERT_EQ(cells.size(), 3u);  // custom x 2 temperatures + wikitext once
  EXPECT_EQ(cells[2].benchmark.name, "wikitext");
  EXPECT_FALSE(cells[2].generation.has_value());
  EXPECT_FALSE(cells[2].generation_index.has_value());
}

TEST(GridExpansion, ExcludeDropsMatchingCells) {
  const GridSpec grid = parse_ok(
      "name: t\n"
      "models: [{name: small, path: a}, {name: yi-34b, path: b}]\n"
      "kv_cache:\n"
      "  - {scheme: int, bits: [4, 2]}\n"
      "  - {scheme: [kivi, fp8_e5m2], bits: 2}\n"
      "benchmarks: [advbench, xstest]\n"
      "exclude:\n"
      "  - {model: yi-34b, bits: 2}\n"
      "  - {benchmark: xstest, scheme: [kivi, fp8_e5m2]}\n");
  // kv specs: int4, int2, kivi2, fp8e5m2 (bits do not apply to fp8).
  ASSERT_EQ(grid.kv_specs.size(), 4u);
  const std::vector<Cell> cells = expand_grid(grid);
  // 2 x 4 x 2 = 16; rule 1 drops yi-34b x {int2, kivi2} x 2 benchmarks = 4; rule 2 drops
  // xstest x {kivi2, fp8} x 2 models = 4; both match yi-34b x kivi2 x xstest: 16 - 7 = 9.
  EXPECT_EQ(cells.size(), 9u);
  const ExpansionCounts counts = count_cells(grid);
  EXPECT_EQ(counts.cells, 9);
  EXPECT_EQ(counts.rule_matches, (std::vector<std::int64_t>{4, 4}));
  for (const Cell& c : cells) {
    EXPECT_FALSE(c.model.name == "yi-34b" && c.kv.bits == 2 && c.kv.scheme != KvScheme::kFp8E5M2) << c.kv_label;
    EXPECT_FALSE(c.benchmark.name == "xstest" && c.kv.scheme != KvScheme::kInt) << c.kv_label;
  }
}

TEST(GridExpansion, ExcludeByLabelTaskAndTemperature) {
  const GridSpec grid = parse_ok(with_kv("  - {scheme: int, bits: [4, 3], granularity: per_tensor, symmetric: true}\n",
                                         "benchmarks: [custom, {name: xstest, task: over_refusal}]\n"
                                         "generation: {temperature: [0.0, 0.7]}\n"
                                         "exclude:\n"
                                         "  - {kv: int3-ptensor-sym, task: over_refusal}\n"
                                         "  - {temperature: 0.70, benchmark: custom}\n"));
  // 2 kv x 2 benchmarks x 2 temperatures = 8; minus int3 x xstest x 2 = 2; minus custom x 0.7 x 2 kv = 2.
  EXPECT_EQ(expand_grid(grid).size(), 4u);
}

TEST(GridExpansion, PromptCounts) {
  const GridSpec grid = parse_ok(with_kv("  - scheme: none\n",
                                         "benchmarks:\n"
                                         "  - {name: advbench, limit: 100, sample: 50, seed: 3}\n"
                                         "  - {name: xstest}\n"
                                         "  - {name: custom, limit: 8}\n"
                                         "  - {name: wikitext}\n"
                                         "  - {name: harmbench, sample: 10}\n"));
  std::vector<std::int64_t> prompts;
  for (const Cell& c : expand_grid(grid)) prompts.push_back(c.n_prompts);
  // wikitext: 300000 tokens, windows of 2048 every 512: 1 + ceil((300000 - 2048) / 512) = 583.
  EXPECT_EQ(prompts, (std::vector<std::int64_t>{50, 450, 8, 583, 10}));
  EXPECT_EQ(perplexity_windows(2048, 2048, 512), 1);
  EXPECT_EQ(perplexity_windows(2049, 2048, 512), 2);
  EXPECT_EQ(perplexity_windows(100, 2048, 512), 1);
}

TEST(GridExpansion, SubsetsCountTheirPromptsAndGetTheirOwnCells) {
  const GridSpec grid = parse_ok(with_kv("  - scheme: none\n",
                                         "benchmarks:\n"
                                         "  - {name: xstest, subset: safe}\n"
                                         "  - {name: xstest, subset: unsafe, task: refusal}\n"
                                         "  - {name: xstest, subset: safe, limit: 300}\n"
                                         "  - {name: custom, subset: jailbreak, limit: 8}\n"
                                         "  - {name: custom}\n"));
  const auto cells = expand_grid(grid);
  std::vector<std::int64_t> prompts;
  std::set<std::string> ids;
  for (const Cell& c : cells) {
    prompts.push_back(c.n_prompts);
    ids.insert(c.id);
  }
  EXPECT_EQ(prompts, (std::vector<std::int64_t>{250, 200, 250, 8, 63}));
  EXPECT_EQ(ids.size(), cells.size());
  EXPECT_NE(canonical_json(cells[0]).find("\"subset\":\"safe\""), std::string::npos);
  // No subset: the benchmark's identity is what it was before subsets existed.
  EXPECT_EQ(canonical_json(cells[4]).find("subset"), std::string::npos);
}

TEST(Shards, RangesCoverThePromptsInOrder) {
  EXPECT_EQ(shard_ranges(70, 32), (std::vector<ShardRange>{{0, 32}, {32, 64}, {64, 70}}));
  EXPECT_EQ(shard_ranges(64), (std::vector<ShardRange>{{0, 32}, {32, 64}}));
  EXPECT_EQ(shard_ranges(1, 32), (std::vector<ShardRange>{{0, 1}}));
  EXPECT_TRUE(shard_ranges(0, 32).empty());
  EXPECT_EQ(shard_ranges(5, 1).size(), 5u);
  EXPECT_EQ(shard_ranges(70, 32)[2].size(), 6);
  EXPECT_THROW(shard_ranges(10, 0), InputError);
  EXPECT_THROW(shard_ranges(-1, 8), InputError);
}

KvSpec int_spec(int bits, Granularity g, bool symmetric, int group_size = 0) {
  return KvSpec{.scheme = KvScheme::kInt,
                .bits = bits,
                .symmetric = symmetric,
                .key_granularity = g,
                .value_granularity = g,
                .group_size = group_size};
}

TEST(KvSpec, Labels) {
  EXPECT_EQ(kv_label(KvSpec{}), "none");
  EXPECT_EQ(kv_label(int_spec(16, Granularity::kPerToken, false)), "none");
  EXPECT_EQ(kv_label(int_spec(4, Granularity::kPerToken, false)), "int4-ptok-asym");
  EXPECT_EQ(kv_label(int_spec(3, Granularity::kPerTensor, true)), "int3-ptensor-sym");
  EXPECT_EQ(kv_label(int_spec(4, Granularity::kPerGroup, true, 64)), "int4-g64-sym");
  EXPECT_EQ(kv_label(KvSpec{.scheme = KvScheme::kKivi, .bits = 2, .group_size = 32, .residual = 128}), "kivi2-r128");
  EXPECT_EQ(kv_label(KvSpec{.scheme = KvScheme::kFp8E5M2}), "fp8e5m2");
  KvSpec protect = int_spec(4, Granularity::kPerToken, false);
  protect.protect_layers = {2, 0};
  EXPECT_EQ(kv_label(protect), "int4-ptok-asym+fp16[0,2]");
  KvSpec dual = int_spec(4, Granularity::kPerChannel, false, 32);
  dual.value_granularity = Granularity::kPerGroup;
  EXPECT_EQ(kv_label(dual), "int4-kpchan-vg32-asym");
  KvSpec cache = int_spec(4, Granularity::kPerToken, true);
  cache.placement = Placement::kCache;
  cache.prefill_attention = PrefillAttention::kQuantized;
  cache.outliers.count = 5;
  EXPECT_EQ(kv_label(cache), "int4-ptok-sym-cache-qprefill+out5");
  cache.name = "mine";
  EXPECT_EQ(kv_label(cache), "mine");
}

TEST(KvSpec, EffectiveBits) {
  EXPECT_DOUBLE_EQ(effective_bits(KvSpec{}), 16.0);
  // 4 bits + (fp16 scale + fp16 zero) per 128-element row.
  EXPECT_DOUBLE_EQ(effective_bits(int_spec(4, Granularity::kPerToken, false)), 4.25);
  EXPECT_DOUBLE_EQ(effective_bits(int_spec(4, Granularity::kPerToken, true)), 4.125);
  EXPECT_DOUBLE_EQ(effective_bits(int_spec(4, Granularity::kPerGroup, true, 64)), 4.25);
  EXPECT_DOUBLE_EQ(effective_bits(int_spec(4, Granularity::kPerGroup, false, 64)), 4.5);
  EXPECT_DOUBLE_EQ(effective_bits(int_spec(3, Granularity::kPerTensor, true)), 3.0);
  EXPECT_DOUBLE_EQ(effective_bits(KvSpec{.scheme = KvScheme::kFp8E4M3}), 8.0);
  // KIVI-2, groups of 32 (scale + min: 1 bit/element), 128 of 2048 tokens at 16 bits.
  EXPECT_DOUBLE_EQ(effective_bits(KvSpec{.scheme = KvScheme::kKivi, .bits = 2, .group_size = 32, .residual = 128}),
                   0.9375 * 3.0 + 0.0625 * 16.0);
  // 2 of 32 layers at fp16.
  KvSpec protect = int_spec(4, Granularity::kPerToken, false);
  protect.protect_layers = {0, 2};
  EXPECT_DOUBLE_EQ(effective_bits(protect), 0.9375 * 4.25 + 0.0625 * 16.0);
  EXPECT_DOUBLE_EQ(effective_bits(protect, {.layers = 4}), 0.5 * 4.25 + 0.5 * 16.0);
  // The paper's KIVI-style: keys per channel (amortized over 2048 tokens), values per group of 32.
  KvSpec dual = int_spec(4, Granularity::kPerChannel, false, 32);
  dual.value_granularity = Granularity::kPerGroup;
  EXPECT_DOUBLE_EQ(effective_bits(dual), 4.0 + 0.5 * 32.0 / 2048 + 0.5 * 32.0 / 32);
}

TEST(KvSpec, CellsUseTheModelsLayerCount) {
  const GridSpec grid = parse_ok(
      "name: t\nmodels: [{name: m, path: m, layers: 4}]\nbenchmarks: [custom]\n"
      "kv_cache: [{scheme: int, bits: 4, protect_layers: [0, 2]}]\n");
  const std::vector<Cell> cells = expand_grid(grid);
  ASSERT_EQ(cells.size(), 1u);
  EXPECT_DOUBLE_EQ(cells[0].effective_bits, 0.5 * 4.25 + 0.5 * 16.0);
  EXPECT_EQ(cells[0].kv_label, "int4-ptok-asym+fp16[0,2]");
}

}  // namespace
}  // namespace kvsafe::orchestrator
