// Malformed grids, one per row: each must produce an error at the exact line:column, on
// the exact key path, with a message containing the given text.

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "orchestrator/grid_parser.h"

namespace kvsafe::orchestrator {
namespace {

Environment test_env() {
  Environment env;
  env.data_dir = "/data";
  env.model_cache_dir = "/model-cache";
  return env;
}

// Lines 1-4 of most cases: a valid name and model.
const std::string kHead =
    "name: t\n"               // 1
    "models:\n"               // 2
    "  - name: m\n"           // 3
    "    path: /x/m.gguf\n";  // 4
// Valid kv_cache and benchmarks sections, two lines each.
const std::string kKv = "kv_cache:\n  - scheme: none\n";
const std::string kBench = "benchmarks:\n  - name: custom\n";

struct ErrorCase {
  std::string name;
  std::string yaml;
  int line;
  int column;
  std::string key_path;
  std::string message;  // substring
  bool require_files = false;
  Severity severity = Severity::kError;
};

// gtest prints the case's name instead of its bytes.
void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << c.name;
}

std::vector<ErrorCase> cases() {
  return {
      {"YamlSyntaxError", "name: t\nmodels: [a,\n", 3, 1, "", "YAML syntax error: end of sequence flow not found"},
      {"YamlBadIndentation", "name: t\n models: 1\n", 2, 8, "", "YAML syntax error: illegal map value"},
      {"EmptyFile", "", 1, 1, "", "the grid file is empty"},
      {"OnlyComments", "# nothing here\n\n", 1, 1, "", "the grid file is empty"},
      {"TopLevelList", "- name: t\n- models: []\n", 1, 1, "", "a grid file is a mapping of keys"},
      {"TopLevelScalar", "hello\n", 1, 1, "", "got a string (\"hello\")"},
      {"UnknownTopKeySuggests", kHead + "kv_cach:\n  - scheme: none\n" + kBench, 5, 1, "kv_cach",
       "unknown key `kv_cach` (did you mean `kv_cache`?)"},
      {"MissingRequiredKey", kHead + kBench, 1, 1, "kv_cache", "missing required key `kv_cache`"},
      {"UnknownKvKeySuggests", kHead + "kv_cache:\n  - scheme: int\n    bits: 4\n    symetric: true\n" + kBench, 8, 5,
       "kv_cache[0].symetric", "unknown key `symetric` (did you mean `symmetric`?)"},
      {"UnknownModelKeySuggests", "name: t\nmodels:\n  - name: m\n    paht: /x\n" + kKv + kBench, 4, 5,
       "models[0].paht", "unknown key `paht` (did you mean `path`?)"},
      {"DuplicateTopKey", "name: a\n" + kHead + kKv + kBench, 2, 1, "name",
       "duplicate key `name` (first given at line 1)"},
      {"DuplicateKvKey", kHead + "kv_cache:\n  - scheme: int\n    bits: 4\n    bits: 3\n" + kBench, 8, 5,
       "kv_cache[0].bits", "duplicate key `bits` (first given at line 7)"},
      {"QuotedNumberIsAString", kHead + "kv_cache:\n  - scheme: int\n    bits: \"4\"\n" + kBench, 7, 11,
       "kv_cache[0].bits", "expected an integer, got a string (\"4\")"},
      {"BoolForInt", kHead + kKv + kBench + "generation:\n  batch_size: true\n", 10, 15, "generation.batch_size",
       "expected an integer, got a boolean (true)"},
      {"MapForInt", kHead + "kv_cache:\n  - scheme: int\n    bits: {a: 1}\n" + kBench, 7, 11, "kv_cache[0].bits",
       "expected an integer, got a mapping"},
      {"FloatForInt", kHead + kKv + kBench + "generation: {max_new_tokens: 64.5}\n", 9, 30, "generation.max_new_tokens",
       "expected an integer, got a number (64.5)"},
      {"MapForList", kHead + kKv + "benchmarks: {name: custom}\n", 7, 13, "benchmarks",
       "expected a list of benchmarks, got a mapping"},
      {"ModelsNotAList", "name: t\nmodels: {name: m}\n" + kKv + kBench, 2, 9, "models",
       "expected a list of models, got a mapping"},
      {"StringForLayerList", kHead + "kv_cache:\n  - scheme: int\n    bits: 4\n    protect_layers: 3\n" + kBench, 8, 21,
       "kv_cache[0].protect_layers", "expected a list of layer indices"},
      {"BitsTooLow", kHead + "kv_cache:\n  - {scheme: int, bits: 1}\n" + kBench, 6, 25, "kv_cache[0].bits",
       "bits must be 2..8 or 16, got 1"},
      {"BitsTooHighInSweep", kHead + "kv_cache:\n  - scheme: int\n    bits: [8, 9, 4]\n" + kBench, 7, 15,
       "kv_cache[0].bits[1]", "bits must be 2..8 or 16, got 9"},
      {"NegativeLimit", kHead + kKv + "benchmarks:\n  - {name: custom, limit: -1}\n", 8, 27, "benchmarks[0].limit",
       "must be >= 1, got -1"},
      {"ShardSizeZero", kHead + kKv + kBench + "execution:\n  shard_size: 0\n", 10, 15, "execution.shard_size",
       "must be between 1 and 1048576, got 0"},
      {"NegativeTemperature", kHead + kKv + kBench + "generation:\n  temperature: -0.5\n", 10, 16,
       "generation.temperature", "temperature must be >= 0 (0 = greedy), got -0.5"},
      {"TopPZero", kHead + kKv + kBench + "generation:\n  top_p: 0\n", 10, 10, "generation.top_p",
       "must be in (0.0, 1.0], got 0.0"},
      {"TopPAboveOne", kHead + kKv + kBench + "generation:\n  top_p: 1.5\n", 10, 10, "generation.top_p",
       "must be in (0.0, 1.0], got 1.5"},
      {"PerGroupWithoutGroupSize",
       kHead + "kv_cache:\n  - scheme: int\n    bits: 4\n    granularity: per_group\n" + kBench, 8, 18,
       "kv_cache[0].granularity", "per_group granularity requires group_size"},
      {"ValuePerGroupWithoutGroupSize",
       kHead + "kv_cache:\n  - scheme: int\n    bits: 4\n    value_granularity: per_group\n" + kBench, 8, 24,
       "kv_cache[0].value_granularity", "per_group granularity requires group_size"},
      {"GroupSizeWithoutPerGroup", kHead + "kv_cache:\n  - scheme: int\n    bits: 4\n    group_size: 64\n" + kBench, 8,
       17, "kv_cache[0].group_size", "group_size is only used with a per_group granularity"},
      {"PrefillWithoutCachePlacement",
       kHead + "kv_cache:\n  - scheme: int\n    bits: 4\n    prefill_attention: quantized\n" + kBench, 8, 24,
       "kv_cache[0].prefill_attention", "prefill_attention only applies with placement: cache"},
      {"ZipKeyNotAList",
       kHead + "kv_cache:\n  - scheme: int\n    bits: [4, 2]\n    residual: 64\n    zip: [bits, residual]\n" + kBench,
       9, 17, "kv_cache[0].zip[1]", "zip key `residual` is not a list"},
      {"ZipUnequalLengths",
       kHead + "kv_cache:\n  - scheme: int\n    bits: [4, 2]\n    residual: [0, 32, 64]\n    zip: [bits, residual]\n" +
           kBench,
       9, 10, "kv_cache[0].zip", "zip lists have unequal lengths: bits has 2 values, residual has 3"},
      {"ZipUnknownKeySuggests",
       kHead + "kv_cache:\n  - scheme: int\n    bits: [4, 2]\n    residual: [0, 32]\n    zip: [bits, residul]\n" +
           kBench,
       9, 17, "kv_cache[0].zip[1]", "zip names unknown key `residul` (did you mean `residual`?)"},
      {"ZipKeyNotSet", kHead + "kv_cache:\n  - scheme: int\n    bits: [4, 2]\n    zip: [bits, residual]\n" + kBench, 8,
       17, "kv_cache[0].zip[1]", "zip names `residual`, which this entry does not set"},
      {"DuplicateModelNames", "name: t\nmodels:\n  - {name: m, path: /a}\n  - {name: m, path: /b}\n" + kKv + kBench, 4,
       12, "models[1].name", "duplicate model name `m` (first at line 3)"},
      {"UnknownBenchmarkSuggests", kHead + kKv + "benchmarks:\n  - name: advbnch\n", 8, 11, "benchmarks[0].name",
       "unknown benchmark `advbnch` (did you mean `advbench`?)"},
      {"UnknownSubset", kHead + kKv + "benchmarks:\n  - {name: xstest, subset: benign}\n", 8, 28,
       "benchmarks[0].subset", "unknown subset `benign` of xstest (valid: safe, unsafe)"},
      {"SubsetOfBenchmarkWithout", kHead + kKv + "benchmarks:\n  - {name: advbench, subset: safe}\n", 8, 30,
       "benchmarks[0].subset", "benchmark advbench has no subsets"},
      {"TaskInvalidForBenchmark", kHead + kKv + "benchmarks:\n  - {name: advbench, task: perplexity}\n", 8, 28,
       "benchmarks[0].task", "task perplexity is not valid for benchmark advbench (valid: refusal)"},
      {"EmptyModels", "name: t\nmodels: []\n" + kKv + kBench, 2, 9, "models", "models is empty"},
      {"EmptyKvCache", kHead + "kv_cache: []\n" + kBench, 5, 11, "kv_cache", "kv_cache is empty"},
      {"EmptyBenchmarks", kHead + kKv + "benchmarks: []\n", 7, 13, "benchmarks", "benchmarks is empty"},
      {"UnsetEnvironmentVariable",
       "name: t\nmodels:\n  - name: m\n    path: ${KVSAFE_TEST_SURELY_UNSET}/m.gguf\n" + kKv + kBench, 4, 11,
       "models[0].path", "environment variable `KVSAFE_TEST_SURELY_UNSET` is not set"},
      {"UnterminatedVariable", "name: t\nmodels:\n  - name: m\n    path: ${KVSAFE_DATA/m.gguf\n" + kKv + kBench, 4, 11,
       "models[0].path", "unterminated `${`"},
      {"ExcludeUnknownKey", kHead + kKv + kBench + "exclude:\n  - {model: m, bitz: 2}\n", 10, 16, "exclude[0].bitz",
       "unknown key `bitz` (did you mean `bits`?)"},
      {"BadGridName", "name: my grid\nmodels:\n  - name: m\n    path: /x/m.gguf\n" + kKv + kBench, 1, 7, "name",
       "grid name `my grid` may only use letters, digits"},
      {"SampleLargerThanLimit", kHead + kKv + "benchmarks:\n  - {name: advbench, limit: 10, sample: 50}\n", 8, 41,
       "benchmarks[0].sample", "sample (50) is larger than limit (10)"},
      {"InvalidDtype", kHead + "    dtype: fp16\n" + kKv + kBench, 5, 12, "models[0].dtype",
       "invalid value `fp16`: expected one of auto|float32|bfloat16|float16"},
      {"InvalidJudgeKind", kHead + kKv + kBench + "judge: {kind: regex}\n", 9, 15, "judge.kind",
       "invalid value `regex`: expected one of keyword|model"},
      {"MissingModelFileWhenRequired",
       "name: t\nmodels:\n  - name: m\n    path: /surely/missing/m.gguf\n" + kKv + kBench, 4, 11, "models[0].path",
       "model file not found: /surely/missing/m.gguf", true},
      {"SchemeMissing", kHead + "kv_cache:\n  - bits: 4\n" + kBench, 6, 5, "kv_cache[0].scheme",
       "missing required key `scheme`"},
      {"UnknownSchemeSuggests", kHead + "kv_cache:\n  - scheme: fp8_e4m2\n" + kBench, 6, 13, "kv_cache[0].scheme",
       "invalid value `fp8_e4m2`: expected one of none|int|fp8_e4m3|fp8_e5m2|kivi|q8_0|q4_0|q4_1|q5_0|q5_1 (did you "
       "mean `fp8_e4m3`?)"},
      {"IntWithoutBits", kHead + "kv_cache:\n  - scheme: int\n" + kBench, 6, 5, "kv_cache[0].bits",
       "missing required key `bits` for scheme int"},
      {"ProtectedLayerOutOfRange",
       "name: t\nmodels:\n  - {name: m, path: /x, layers: 32}\nkv_cache:\n  - {scheme: int, bits: 4, protect_layers: "
       "[0, "
       "40]}\n" +
           kBench,
       5, 48, "kv_cache[0].protect_layers[1]", "layer 40 does not exist in model `m` (32 layers"},
      {"UnknownDiagnosisTaskSuggests", kHead + kKv + kBench + "diagnose:\n  tasks: [layer_ablation, pcr_validaton]\n",
       10, 27, "diagnose.tasks[1]", "did you mean `pcr_validation`?"},
      {"DiagnosisModelNotInGrid", kHead + kKv + kBench + "diagnose:\n  models: [mm]\n", 10, 12, "diagnose.models[0]",
       "`mm` is not a name in `models` (did you mean `m`?)"},
      {"CriticalLayerListedTwice", kHead + kKv + kBench + "diagnose:\n  critical_layers: [3, 1, 3]\n", 10, 27,
       "diagnose.critical_layers[2]", "3 is listed twice"},
      {"DiagnosisTasksNotAList", kHead + kKv + kBench + "diagnose:\n  tasks: pcr\n", 10, 10, "diagnose.tasks",
       "expected a list of diagnosis tasks"},
      {"MitigationBitsOutOfRange", kHead + kKv + kBench + "diagnose:\n  mitigation_bits: [4, 9]\n", 10, 24,
       "diagnose.mitigation_bits[1]", "9"},
      {"PcrWithoutCriticalLayers", kHead + kKv + kBench + "diagnose:\n  tasks: [pcr]\n", 10, 10, "diagnose.tasks",
       "pcr needs the critical layers: add layer_ablation to the tasks, or name them in diagnose.critical_layers"},
      {"CriticalLayersOfTwoModels",
       "name: t\nmodels:\n  - {name: a, path: /x/a.gguf}\n  - {name: b, path: /x/b.gguf}\n" + kKv + kBench +
           "diagnose:\n  critical_layers: [0]\n",
       10, 20, "diagnose.critical_layers", "this grid diagnoses 2 models; name the one in `diagnose.models`"},
      {"MitigateWithoutPcr", kHead + kKv + kBench + "diagnose:\n  tasks: [layer_ablation, mitigate]\n", 10, 10,
       "diagnose.tasks", "mitigate needs pcr (the failure mode rests on it)"},
      {"MitigateIsAutoOrNone", kHead + kKv + kBench + "diagnose:\n  mitigate: always\n", 10, 13, "diagnose.mitigate",
       "expected one of"},
      {"PcrLowAboveHigh", kHead + kKv + kBench + "diagnose: {pcr_low: 0.8, pcr_high: 0.7}\n", 9, 36,
       "diagnose.pcr_high", "pcr_low (0.8) must be below pcr_high (0.7)"},
      {"BadSlurmTime", kHead + kKv + kBench + "slurm: {time: \"1 day\"}\n", 9, 15, "slurm.time",
       "time `1 day` is not a SLURM time"},
      {"MaxLengthForGenerationTask", kHead + kKv + "benchmarks:\n  - {name: advbench, max_length: 1024}\n", 8, 22,
       "benchmarks[0].max_length", "max_length only applies to task perplexity"},
      {"ModelJudgeWithoutModel", kHead + kKv + kBench + "judge: {kind: model}\n", 9, 8, "judge.model",
       "missing required key `model`"},
      {"EmptySweep", kHead + "kv_cache:\n  - {scheme: int, bits: []}\n" + kBench, 6, 25, "kv_cache[0].bits",
       "an empty list sweeps nothing"},
      {"NameOnSweep", kHead + "kv_cache:\n  - {scheme: int, bits: [4, 2], name: mine}\n" + kBench, 6, 39,
       "kv_cache[0].name", "name labels one spec, but this entry sweeps 2"},
      {"GenerationZipUnequal",
       kHead + kKv + kBench + "generation: {temperature: [0, 0.7], seed: [1, 2, 3], zip: [temperature, seed]}\n", 9, 59,
       "generation.zip", "zip lists have unequal lengths: temperature has 2 values, seed has 3"},
      // generation.speculative (issue 22): the draft is a models name; greedy only.
      {"SpeculativeUnknownDraft", kHead + kKv + kBench + "generation:\n  speculative:\n    draft: mm\n", 11, 12,
       "generation.speculative.draft", "`mm` is not a name in `models` (did you mean `m`?)"},
      {"SpeculativeWithoutDraft", kHead + kKv + kBench + "generation:\n  speculative: {draft_tokens: 3}\n", 10, 16,
       "generation.speculative.draft", "missing required key `draft`"},
      {"SpeculativeUnknownQuantize",
       kHead + kKv + kBench + "generation:\n  speculative: {draft: m, quantize: targets}\n", 10, 37,
       "generation.speculative.quantize", "invalid value `targets`: expected one of"},
      {"SpeculativeNoDraftTokens", kHead + kKv + kBench + "generation:\n  speculative: {draft: m, draft_tokens: 0}\n",
       10, 41, "generation.speculative.draft_tokens", "must be between 1 and 64, got 0"},
      {"SpeculativeSampledPoint",
       kHead + kKv + kBench + "generation:\n  temperature: [0, 0.7]\n  speculative: {draft: m}\n", 11, 16,
       "generation.speculative", "speculative decoding is greedy"},
      {"SpeculativeBatched", kHead + kKv + kBench + "generation:\n  batch_size: 4\n  speculative: {draft: m}\n", 11, 16,
       "generation.speculative", "set generation.batch_size: 1 (this section has 4)"},
      {"SpeculativeRepetitionPenalty",
       kHead + kKv + kBench + "generation:\n  repetition_penalty: 1.1\n  speculative: {draft: m}\n", 10, 23,
       "generation.repetition_penalty", "speculative decoding applies no repetition penalty"},
      {"ExcludeDropsEverything", kHead + kKv + kBench + "exclude:\n  - {model: m}\n", 9, 1, "exclude",
       "the exclude rules drop every cell of the grid"},
      // Warnings are a separate severity.
      {"ExcludeMatchesNothingWarns", kHead + kKv + kBench + "exclude:\n  - {model: m, bits: 2}\n", 10, 5, "exclude[0]",
       "this rule matches no cell", false, Severity::kWarning},
      {"ExcludeUnknownModelWarnsWithSuggestion", kHead + kKv + kBench + "exclude:\n  - {model: mm}\n", 10, 13,
       "exclude[0].model", "no model `mm` in this grid (did you mean `m`?)", false, Severity::kWarning},
      {"IrrelevantKeyWarns", kHead + "kv_cache:\n  - {scheme: fp8_e5m2, symmetric: true}\n" + kBench, 6, 35,
       "kv_cache[0].symmetric", "`symmetric` has no effect with scheme fp8_e5m2; ignored", false, Severity::kWarning},
      // Issue 25: every model noted to refuse rarely, on a grid that measures refusals.
      {"EveryModelRefusesRarelyWarns",
       "name: t\nmodels:\n  - name: m\n    path: /x/m.gguf\n    refusal_note: refused 0 of 19\n" + kKv + kBench, 3, 3,
       "models",
       "every model of this grid is noted to refuse rarely (m: refused 0 of 19), so its conditional flip rates will "
       "likely be undefined",
       false, Severity::kWarning},
      {"CalibrationSampleAboveTheSmallerClassWarns",
       kHead + kKv + "benchmarks:\n  - {name: calibration, task: refusal_direction, sample: 300}\n", 8, 58,
       "benchmarks[0].sample", "each class gives 260", false, Severity::kWarning},
      // Calibration counts limit per class: the smaller (harmful) class has 260 prompts.
      {"CalibrationLimitAboveTheSmallerClassWarns",
       kHead + kKv + "benchmarks:\n  - {name: calibration, task: refusal_direction, limit: 300}\n", 8, 57,
       "benchmarks[0].limit",
       "limit 300 exceeds the 260 prompts of calibration's smaller class (limit and sample count harmful and "
       "harmless prompts apart)",
       false, Severity::kWarning},
  };
}

ParseResult parse_case(const ErrorCase& c) {
  GridOptions options;
  options.require_model_files = c.require_files;
  options.base_dir = "/grids";
  return parse_grid_text(c.yaml, "grid.yaml", test_env(), options);
}

// Whether `result` has a diagnostic of c's severity at c's line and column, on c's key path,
// whose message contains c's text.
bool located(const ErrorCase& c, const ParseResult& result) {
  const std::vector<Diagnostic> found =
      c.severity == Severity::kError ? result.diagnostics.errors() : result.diagnostics.warnings();
  for (const Diagnostic& d : found) {
    if (d.line == c.line && d.column == c.column && d.key_path == c.key_path &&
        d.message.find(c.message) != std::string::npos) {
      return true;
    }
  }
  return false;
}

class GridErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(GridErrorTest, ReportsPositionPathAndMessage) {
  const ErrorCase& c = GetParam();
  const ParseResult result = parse_case(c);
  EXPECT_TRUE(located(c, result)) << "expected " << c.line << ":" << c.column << ": " << c.key_path << ": ..."
                                  << c.message << "...\ngot:\n"
                                  << result.diagnostics.format();
  if (c.severity == Severity::kError) {
    EXPECT_FALSE(result.ok());
  } else {
    EXPECT_TRUE(result.ok()) << result.diagnostics.format();
  }
}

INSTANTIATE_TEST_SUITE_P(Malformed, GridErrorTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& param_info) { return param_info.param.name; });

TEST(GridErrors, AtLeastThirtyDistinctMalformedGridsAreLocated) {
  // Thirty real checks, not thirty rows: each counted grid must be refused with its error at
  // the stated file position and key path, and no two counted rows may expect the same
  // (key path, message) -- a copied row would count twice otherwise.
  std::set<std::pair<std::string, std::string>> distinct;
  for (const ErrorCase& c : cases()) {
    if (c.severity != Severity::kError) continue;
    const bool found = located(c, parse_case(c));
    EXPECT_TRUE(found) << c.name;
    if (found) distinct.emplace(c.key_path, c.message);
  }
  EXPECT_GE(distinct.size(), 30U);
}

}  // namespace
}  // namespace kvsafe::orchestrator
