// Valid grids: the experiments/ files, defaults, paths and ${VAR}s, typing, and that a
// grid with many problems reports all of them at once.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"

namespace kvsafe::orchestrator {
namespace {

namespace fs = std::filesystem;

Environment test_env() {
  Environment env;
  env.data_dir = "/data";
  env.model_cache_dir = "/model-cache";
  return env;
}

ParseResult parse(const std::string& yaml, GridOptions options = {}) {
  if (options.base_dir.empty()) options.base_dir = "/grids";
  return parse_grid_text(yaml, "grid.yaml", test_env(), options);
}

const std::string kMinimal =
    "name: t\n"
    "models:\n"
    "  - name: m\n"
    "    path: m.gguf\n"
    "kv_cache:\n"
    "  - scheme: none\n"
    "benchmarks:\n"
    "  - name: custom\n";

std::vector<std::string> labels(const GridSpec& grid) {
  std::vector<std::string> out;
  for (const KvSpec& k : grid.kv_specs) out.push_back(kv_label(k));
  return out;
}

TEST(GridParser, MinimalGridTakesTheDefaults) {
  const ParseResult result = parse(kMinimal);
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  EXPECT_TRUE(result.diagnostics.empty());
  const GridSpec& grid = *result.grid;
  EXPECT_EQ(grid.name, "t");
  EXPECT_EQ(grid.default_db_path(), fs::path("results/t.db"));
  ASSERT_EQ(grid.models.size(), 1u);
  EXPECT_EQ(grid.models[0].path, fs::path("/grids/m.gguf"));  // relative to the grid's folder
  EXPECT_EQ(grid.models[0].dtype, DType::kAuto);
  ASSERT_EQ(grid.generations.size(), 1u);
  EXPECT_EQ(grid.generations[0].max_new_tokens, 256);
  EXPECT_EQ(grid.generations[0].batch_size, 4);
  EXPECT_EQ(grid.generations[0].temperature, 0.0);
  EXPECT_EQ(grid.generations[0].top_p, 1.0);
  EXPECT_EQ(grid.execution.shard_size, 32);
  EXPECT_EQ(grid.execution.retries, 2);
  EXPECT_EQ(grid.judge.kind, JudgeKind::kKeyword);
  EXPECT_EQ(grid.diagnose.calibration_prompts, 20);
  EXPECT_DOUBLE_EQ(grid.diagnose.pcr_high, 0.70);
  EXPECT_FALSE(grid.slurm.has_value());
  ASSERT_EQ(grid.benchmarks.size(), 1u);
  EXPECT_EQ(grid.benchmarks[0].task, Task::kRefusal);
}

TEST(GridParser, QuickstartParsesAndExpandsToItsCells) {
  const ParseResult result =
      parse_grid_file(fs::path(KVSAFE_SOURCE_DIR) / "experiments" / "quickstart.yaml", test_env(), {});
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  // Its one warning: SmolLM2-135M is noted to refuse rarely (issue 25), so flips will be undefined.
  EXPECT_EQ(result.diagnostics.error_count(), 0) << result.diagnostics.format();
  EXPECT_EQ(result.diagnostics.warning_count(), 1) << result.diagnostics.format();
  EXPECT_NE(result.diagnostics.format().find("every model of this grid is noted to refuse rarely"), std::string::npos);
  const GridSpec& grid = *result.grid;
  EXPECT_EQ(grid.models[0].path, fs::path("/model-cache/SmolLM2-135M-Instruct.Q4_1.gguf"));
  EXPECT_EQ(grid.models[0].refusal_note, "refused 0 of 19 custom refusal prompts at full precision (issue 25)");
  EXPECT_EQ(labels(grid),
            (std::vector<std::string>{"none", "int8-ptok-asym", "int4-ptok-asym", "int3-ptok-asym", "int2-ptok-asym",
                                      "int3-ptensor-sym", "kivi2-r0", "fp8e5m2", "fp8e4m3"}));
  const std::vector<Cell> cells = expand_grid(grid);
  ASSERT_EQ(cells.size(), 36u);  // 9 KV specs x (AdvBench, XSTest, custom, WikiText)
  for (const Cell& c : cells) {
    if (c.task() == Task::kPerplexity) {
      EXPECT_EQ(c.n_prompts, 2);  // windows of 512 tokens
      EXPECT_FALSE(c.generation.has_value());
      continue;
    }
    EXPECT_EQ(c.n_prompts, 8);
    EXPECT_EQ(c.generation->max_new_tokens, 64);
    EXPECT_EQ(c.generation->batch_size, 4);
  }
}

TEST(GridParser, PaperGridParsesWithPlaceholderPaths) {
  const fs::path file = fs::path(KVSAFE_SOURCE_DIR) / "experiments" / "paper.yaml";
  const ParseResult result = parse_grid_file(file, test_env(), {.require_model_files = false});
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  EXPECT_TRUE(result.diagnostics.empty()) << result.diagnostics.format();
  const GridSpec& grid = *result.grid;
  EXPECT_EQ(grid.models.size(), 11u);
  for (const ModelSpec& m : grid.models) {
    EXPECT_TRUE(m.params.has_value()) << m.name;
    EXPECT_TRUE(m.layers.has_value()) << m.name;
  }
  // The §4 sweep, group-64, the §5 3-bit symmetric preset, keys only, values only, KIVI-style, FP8.
  EXPECT_EQ(labels(grid), (std::vector<std::string>{"none",
                                                    "int8-ptok-asym",
                                                    "int6-ptok-asym",
                                                    "int5-ptok-asym",
                                                    "int4-ptok-asym",
                                                    "int3-ptok-asym",
                                                    "int2-ptok-asym",
                                                    "int4-g64-asym",
                                                    "int3-g64-asym",
                                                    "int2-g64-asym",
                                                    "int3-ptensor-sym",
                                                    "int3-pchan-sym",
                                                    "int3-g64-sym",
                                                    "int8v16-ptok-asym",
                                                    "int4v16-ptok-asym",
                                                    "int3v16-ptok-asym",
                                                    "int2v16-ptok-asym",
                                                    "int16v8-ptok-asym",
                                                    "int16v4-ptok-asym",
                                                    "int16v3-ptok-asym",
                                                    "int16v2-ptok-asym",
                                                    "int4-kpchan-vg32-asym",
                                                    "int2-kpchan-vg32-asym",
                                                    "fp8e4m3-cache",
                                                    "fp8e5m2-cache"}));
  std::vector<std::string> benchmarks;
  for (const BenchmarkSpec& b : grid.benchmarks) benchmarks.push_back(b.name);
  EXPECT_EQ(benchmarks, (std::vector<std::string>{"custom", "advbench", "harmbench", "xstest", "ifeval", "wikitext"}));
  // 11 models x 25 kv specs x 6 benchmarks, one generation setting.
  EXPECT_EQ(expand_grid(grid).size(), 11u * 25u * 6u);
}

TEST(GridParser, PaperGridWithRequiredFilesNamesEveryMissingModelPath) {
  const fs::path file = fs::path(KVSAFE_SOURCE_DIR) / "experiments" / "paper.yaml";
  const ParseResult result = parse_grid_file(file, test_env(), {.require_model_files = true});
  ASSERT_FALSE(result.ok());
  int model_errors = 0;
  for (const Diagnostic& d : result.diagnostics.errors()) {
    if (d.key_path.starts_with("models[") && d.key_path.ends_with("].path")) {
      ++model_errors;
      EXPECT_NE(d.message.find("not found: /models/hf/"), std::string::npos) << d.format();
      EXPECT_EQ(d.file, file.string());
      EXPECT_GT(d.line, 0);
    }
  }
  EXPECT_EQ(model_errors, 11);
}

TEST(GridParser, ReportsAllErrorsOfAFileAtOnce) {
  const std::string yaml =
      "name: bad name\n"                                      // 1: bad characters
      "models:\n"                                             // 2
      "  - {name: m, path: /a, dtype: half}\n"                // 3: invalid dtype
      "  - {name: m, path: /b}\n"                             // 4: duplicate model name
      "kv_cache:\n"                                           // 5
      "  - {scheme: int, bits: 9}\n"                          // 6: bits out of range
      "  - {scheme: int, bits: 4, granularity: per_group}\n"  // 7: group_size missing
      "benchmarks:\n"                                         // 8
      "  - {name: advbenhc, limit: 10}\n"                     // 9: unknown benchmark
      "generation: {temperature: -1, top_p: 2}\n"             // 10: two range errors
      "execution: {shard_size: 0, retries: x}\n"              // 11: range + type
      "judge: {kind: model}\n"                                // 12: model missing
      "colour: blue\n";                                       // 13: unknown key
  const ParseResult result = parse(yaml);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.diagnostics.error_count(), 12) << result.diagnostics.format();
  std::set<int> lines;
  for (const Diagnostic& d : result.diagnostics.errors()) lines.insert(d.line);
  EXPECT_EQ(lines, (std::set<int>{1, 3, 4, 6, 7, 9, 10, 11, 12, 13}));
  // format(): one line per diagnostic, sorted by position.
  const std::string text = result.diagnostics.format();
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "grid.yaml:1:7: name: grid name `bad name` may only use letters, digits, `_`, `.` and `-` (it names "
            "results/<name>.db)");
  EXPECT_LT(text.find("grid.yaml:3:"), text.find("grid.yaml:13:1: colour: unknown key `colour`"));
}

TEST(GridParser, RefusesExplosiveSweeps) {
  // 7^6 = 117,649 combinations in one entry.
  const ParseResult one_entry = parse(
      "name: t\nmodels: [{name: m, path: m}]\nbenchmarks: [custom]\n"
      "kv_cache:\n  - {scheme: int, bits: [2, 3, 4, 5, 6, 7, 8], residual: [0, 1, 2, 3, 4, 5, 6],\n"
      "     outlier_channels: [[0], [1], [2], [3], [4], [5], [6]], protect_layers: [[0], [1], [2], [3], [4], [5], "
      "[6]],\n"
      "     group_size: [16, 32, 64, 128, 256, 512, 1024], granularity: [per_group, per_group, per_group, per_group,\n"
      "     per_group, per_group, per_group]}\n");
  ASSERT_FALSE(one_entry.ok());
  EXPECT_NE(one_entry.diagnostics.format().find("grid.yaml:5:5: kv_cache[0]: this entry sweeps more than 100000"),
            std::string::npos)
      << one_entry.diagnostics.format();
  // 1000 seeds x 100 kv x 101 benchmarks > 10M cells.
  std::string yaml =
      "name: t\nmodels: [{name: m, path: m}]\nkv_cache:\n  - {scheme: int, bits: [2, 3, 4, 5], "
      "residual: [";
  for (int i = 0; i < 25; ++i) yaml += (i ? ", " : "") + std::to_string(i);
  yaml += "]}\nbenchmarks:\n";
  for (int i = 1; i <= 101; ++i) yaml += "  - {name: advbench, limit: " + std::to_string(i) + "}\n";
  yaml += "generation: {seed: [";
  for (int i = 0; i < 1000; ++i) yaml += (i ? ", " : "") + std::to_string(i);
  yaml += "]}\n";
  const ParseResult big = parse(yaml);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.diagnostics.format().find("the grid expands to 10100000 cells, more than 10000000"), std::string::npos)
      << big.diagnostics.format();
}

TEST(GridParser, DiagnosticFormat) {
  Diagnostics d;
  d.add_error("g.yaml", 3, 5, "kv_cache[2].bits", "bits must be 2..8 or 16, got 9");
  d.add_warning("g.yaml", 1, 1, "", "something odd");
  d.add_error("g.yaml", 3, 5, "kv_cache[2].bits", "bits must be 2..8 or 16, got 9");  // duplicate: kept once
  EXPECT_EQ(d.error_count(), 1);
  EXPECT_EQ(d.warning_count(), 1);
  EXPECT_EQ(d.format(),
            "g.yaml:1:1: warning: something odd\n"
            "g.yaml:3:5: kv_cache[2].bits: bits must be 2..8 or 16, got 9\n");
}

TEST(GridParser, UnreadableFileIsADiagnosticNotAnException) {
  const ParseResult result = parse_grid_file("/surely/not/here.yaml", test_env(), {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.diagnostics.format(), "/surely/not/here.yaml:0:0: cannot read the grid file\n");
}

TEST(GridParser, ExpandsEnvironmentVariables) {
  ::setenv("KVSAFE_GRID_TEST_DIR", "/from/env", 1);
  const ParseResult result = parse(
      "name: t\n"
      "models:\n"
      "  - {name: a, path: \"${KVSAFE_MODEL_CACHE}/a.gguf\"}\n"
      "  - {name: b, path: \"${KVSAFE_GRID_TEST_DIR}/b\", chat_template: \"${KVSAFE_DATA}/t.jinja\"}\n"
      "  - {name: c, path: c, chat_template: chatml}\n"
      "kv_cache: [{scheme: none}]\n"
      "benchmarks: [custom]\n");
  ::unsetenv("KVSAFE_GRID_TEST_DIR");
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  const GridSpec& grid = *result.grid;
  EXPECT_EQ(grid.models[0].path, fs::path("/model-cache/a.gguf"));
  EXPECT_EQ(grid.models[1].path, fs::path("/from/env/b"));
  EXPECT_EQ(grid.models[1].chat_template_path, fs::path("/data/t.jinja"));
  // The identity keeps the template as written, so it does not depend on the machine.
  EXPECT_EQ(grid.models[1].chat_template, "${KVSAFE_DATA}/t.jinja");
  EXPECT_EQ(grid.models[2].chat_template, "chatml");  // a built-in name, not a path
  EXPECT_FALSE(grid.models[2].chat_template_path.has_value());
}

TEST(GridParser, RequiredModelFilesAcceptFilesAndHfFolders) {
  const fs::path dir = fs::temp_directory_path() / "kvsafe_grid_parser_test";
  fs::remove_all(dir);
  fs::create_directories(dir / "hf" / "ok");
  fs::create_directories(dir / "hf" / "no_config");
  std::ofstream(dir / "m.gguf") << "GGUF";
  std::ofstream(dir / "hf" / "ok" / "config.json") << "{}";
  std::ofstream(dir / "grid.yaml") << "name: t\n"
                                      "models:\n"
                                      "  - {name: a, path: m.gguf}\n"
                                      "  - {name: b, path: hf/ok}\n"
                                      "  - {name: c, path: hf/no_config}\n"
                                      "kv_cache: [{scheme: none}]\n"
                                      "benchmarks: [custom]\n";
  const ParseResult planned = parse_grid_file(dir / "grid.yaml", test_env(), {.require_model_files = false});
  EXPECT_TRUE(planned.ok()) << planned.diagnostics.format();
  const ParseResult run = parse_grid_file(dir / "grid.yaml", test_env(), {.require_model_files = true});
  ASSERT_EQ(run.diagnostics.error_count(), 1) << run.diagnostics.format();
  const Diagnostic d = run.diagnostics.errors()[0];
  EXPECT_EQ(d.line, 5);
  EXPECT_EQ(d.column, 21);
  EXPECT_EQ(d.key_path, "models[2].path");
  EXPECT_EQ(d.message, "model folder " + (dir / "hf" / "no_config").string() + " has no config.json");
  EXPECT_EQ(planned.grid->models[0].path, dir / "m.gguf");
  fs::remove_all(dir);
}

TEST(GridParser, GranularityOverridesApplyWhateverTheKeyOrder) {
  const ParseResult result = parse(
      "name: t\nmodels: [{name: m, path: m}]\nbenchmarks: [custom]\n"
      "kv_cache:\n"
      "  - {scheme: int, bits: 4, value_granularity: per_group, granularity: per_channel, group_size: 32}\n"
      "  - {scheme: int, bits: 4, granularity: per_channel, value_granularity: per_group, group_size: 32}\n");
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  ASSERT_EQ(result.grid->kv_specs.size(), 1u);  // the same spec twice
  EXPECT_EQ(result.grid->kv_specs[0].key_granularity, Granularity::kPerChannel);
  EXPECT_EQ(result.grid->kv_specs[0].value_granularity, Granularity::kPerGroup);
}

TEST(GridParser, CoreSchemaTyping) {
  // yes/no/on are strings under YAML 1.2, not booleans.
  const ParseResult result = parse(kMinimal + "judge: {strip_spaces_fallback: yes}\n");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.diagnostics.format().find("expected true or false, got a string (\"yes\")"), std::string::npos);
  // A number is fine where a string is free text, and 1e3 is a number.
  const ParseResult ok = parse(kMinimal + "description: 2024\ngeneration: {max_new_tokens: 1000, temperature: 1e-1}\n");
  ASSERT_TRUE(ok.ok()) << ok.diagnostics.format();
  EXPECT_EQ(*ok.grid->description, "2024");
  EXPECT_DOUBLE_EQ(ok.grid->generations[0].temperature, 0.1);
}

TEST(GridParser, ParameterCounts) {
  EXPECT_DOUBLE_EQ(*parse_parameter_count("135M"), 135e6);
  EXPECT_DOUBLE_EQ(*parse_parameter_count("7.24B"), 7.24e9);
  EXPECT_DOUBLE_EQ(*parse_parameter_count("46.7e9"), 46.7e9);
  EXPECT_FALSE(parse_parameter_count("big").has_value());
  EXPECT_FALSE(parse_parameter_count("-3B").has_value());
  EXPECT_DOUBLE_EQ(*infer_parameter_count("Qwen2.5-7B-Instruct"), 7e9);
  EXPECT_DOUBLE_EQ(*infer_parameter_count("smollm2-135m"), 135e6);
  EXPECT_DOUBLE_EQ(*infer_parameter_count("Mixtral-8x7B-Instruct-v0.1"), 56e9);
  EXPECT_DOUBLE_EQ(*infer_parameter_count("gemma-2-9b-it"), 9e9);
  EXPECT_FALSE(infer_parameter_count("Phi-3.5-mini-instruct").has_value());
  const ParseResult result = parse(
      "name: t\nmodels:\n  - {name: Qwen2.5-7B, path: a}\n  - {name: phi, path: b, params: 3.8B}\n"
      "  - {name: x, path: c, params: 135000000}\nkv_cache: [{scheme: none}]\nbenchmarks: [custom]\n");
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  EXPECT_DOUBLE_EQ(*result.grid->models[0].parameter_count(), 7e9);
  EXPECT_DOUBLE_EQ(*result.grid->models[1].parameter_count(), 3.8e9);
  EXPECT_DOUBLE_EQ(*result.grid->models[2].parameter_count(), 135e6);
}

TEST(GridParser, SectionsParse) {
  const ParseResult result = parse(kMinimal +
                                   "judge: {kind: model, model: m, format: llama_guard3}\n"
                                   "diagnose: {calibration_prompts: 40, bits: 4, pcr_low: 0.2, pcr_high: 0.8}\n"
                                   "execution: {shard_size: 16, retries: 0, worker_timeout_s: 60, grace_period_s: 5}\n"
                                   "slurm: {partition: a100, nodes: 2, gpus_per_node: 4, time: \"2-00:00:00\", "
                                   "account: lab, extra: [\"--qos=high\"]}\n");
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  const GridSpec& g = *result.grid;
  EXPECT_EQ(g.judge.kind, JudgeKind::kModel);
  EXPECT_EQ(g.judge.model, "m");
  ASSERT_TRUE(g.judge.model_path.has_value());  // a models name, resolved to its path
  EXPECT_EQ(*g.judge.model_path, g.models.at(0).path);
  EXPECT_EQ(g.judge.format, ModelJudgeFormat::kLlamaGuard3);
  EXPECT_EQ(g.diagnose.bits, 4);
  EXPECT_EQ(g.execution.shard_size, 16);
  ASSERT_TRUE(g.slurm.has_value());
  EXPECT_EQ(g.slurm->nodes, 2);
  EXPECT_EQ(g.slurm->time, "2-00:00:00");
  EXPECT_EQ(*g.slurm->account, "lab");
  EXPECT_EQ(g.slurm->extra, (std::vector<std::string>{"--qos=high"}));
}

}  // namespace
}  // namespace kvsafe::orchestrator
