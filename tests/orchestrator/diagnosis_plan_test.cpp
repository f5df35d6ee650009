// The diagnosis plan (orchestrator/diagnosis_plan.h): which cells each task adds, what waits
// for the critical layers, stable ids as knowledge grows, explicit layers, and the derived
// cells' JSON round trip that carries them to workers.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "orchestrator/cell_identity.h"
#include "orchestrator/diagnosis_plan.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"

namespace kvsafe::orchestrator {
namespace {

GridSpec parse_ok(const std::string& diagnose) {
  Environment env;
  env.model_cache_dir = "/mc";
  const std::string yaml =
      "name: t\n"
      "models: [{name: m, path: m}, {name: other, path: o}]\n"
      "kv_cache: [{scheme: none}]\n"
      "benchmarks: [custom]\n"
      "generation: {max_new_tokens: 32, batch_size: 4}\n" +
      diagnose;
  const ParseResult result = parse_grid_text(yaml, "grid.yaml", env, {.base_dir = "/g"});
  EXPECT_TRUE(result.ok()) << result.diagnostics.format();
  return result.ok() ? *result.grid : GridSpec{};
}

ModelDiagnosisFacts facts(std::int64_t layers, std::optional<std::vector<int>> critical = std::nullopt,
                          std::vector<std::string> from = {}) {
  return {.model = "m", .layers = layers, .critical = std::move(critical), .critical_from = std::move(from)};
}

std::vector<DiagnosisTask> tasks_of(std::initializer_list<DiagnosisTask> tasks) {
  return tasks;
}

const Cell& cell_of(const DiagnosisPlan& plan, const std::string& task, const std::string& arm) {
  for (const DiagnosisRole& role : plan.roles) {
    if (role.task == task && role.arm == arm) {
      for (const Cell& cell : plan.cells) {
        if (cell.id == role.cell_id) return cell;
      }
    }
  }
  throw std::runtime_error("no role " + task + " / " + arm);
}

std::set<std::string> ids_of(const DiagnosisPlan& plan) {
  std::set<std::string> ids;
  for (const Cell& cell : plan.cells) ids.insert(cell.id);
  return ids;
}

TEST(DiagnosisPlan, LayerAblationIsEachLayerAloneOnTheCalibrationPrompts) {
  const GridSpec grid = parse_ok("diagnose: {calibration_prompts: 12, bits: 3, max_new_tokens: 8}\n");
  const DiagnosisPlan plan = plan_diagnosis(grid, {facts(4)}, tasks_of({DiagnosisTask::kLayerAblation}));
  ASSERT_EQ(plan.cells.size(), 5U);  // baseline + 4 layers
  ASSERT_EQ(plan.roles.size(), 5U);
  EXPECT_TRUE(plan.waiting.empty());
  const Cell& base = cell_of(plan, "baseline", "calibration");
  EXPECT_EQ(base.kv.scheme, KvScheme::kNone);
  for (int l = 0; l < 4; ++l) {
    const Cell& cell = cell_of(plan, "layer_ablation", "layer " + std::to_string(l));
    EXPECT_EQ(cell.kv_label, "int3-ptensor-sym@[" + std::to_string(l) + "]");
    EXPECT_EQ(cell.benchmark.name, "custom");
    EXPECT_EQ(cell.benchmark.limit, 12);
    EXPECT_EQ(cell.n_prompts, 12);
    ASSERT_TRUE(cell.generation.has_value());
    EXPECT_EQ(cell.generation->max_new_tokens, 8);  // diagnose.max_new_tokens over generation's 32
    EXPECT_EQ(cell.generation->batch_size, 4);
    EXPECT_TRUE(cell.derived_from.empty());
    EXPECT_EQ(cell.id, cell_id_of(canonical_json(cell)));
  }
  // The baseline's detail carries the constants the report needs.
  const auto detail = nlohmann::json::parse(plan.roles.front().detail_json);
  EXPECT_EQ(detail.at("model_layers"), 4);
  EXPECT_EQ(detail.at("bits"), 3);
  EXPECT_EQ(detail.at("prompts"), "calibration");
}

TEST(DiagnosisPlan, TheBaselineIsTheGridsOwnFullPrecisionCellWhenTheSettingsAgree) {
  // A grid whose custom entry and generation equal the calibration set's: one cell, one id.
  const GridSpec grid = parse_ok("diagnose: {calibration_prompts: 20}\n");
  GridSpec same = grid;
  same.benchmarks.front().limit = 20;
  const auto grid_cells = expand_grid(same);
  const DiagnosisPlan plan = plan_diagnosis(grid, {facts(2)}, tasks_of({DiagnosisTask::kLayerAblation}));
  const Cell& base = cell_of(plan, "baseline", "calibration");
  EXPECT_TRUE(std::any_of(grid_cells.begin(), grid_cells.end(), [&](const Cell& c) { return c.id == base.id; }));
}

TEST(DiagnosisPlan, TasksThatNeedTheCriticalLayersWaitAndSayWhy) {
  const GridSpec grid = parse_ok("");
  const DiagnosisPlan plan = plan_diagnosis(
      grid, {facts(4)}, tasks_of({DiagnosisTask::kPcr, DiagnosisTask::kProtectionSweep, DiagnosisTask::kMitigation}));
  // pcr once, protection's key-norm baseline once, protection and mitigation per bit width (4, 3)
  ASSERT_EQ(plan.waiting.size(), 6U);
  EXPECT_EQ(plan.waiting.front(), "m: pcr waits for the critical layers (layer_ablation)");
  EXPECT_EQ(plan.waiting[1], "m: protection_sweep's key-norm baseline waits for the key magnitudes");
  // What needs no critical layer is planned already: the unprotected and uniform arms.
  std::set<std::string> arms;
  for (const auto& role : plan.roles) arms.insert(role.task + "/" + role.arm);
  EXPECT_EQ(arms, (std::set<std::string>{"baseline/calibration", "baseline/test", "protection_sweep/key_magnitudes",
                                         "protection_sweep/int4 unprotected", "protection_sweep/int3 unprotected",
                                         "mitigation/int4 uniform", "mitigation/int4 per_channel",
                                         "mitigation/int4 group64", "mitigation/int3 uniform",
                                         "mitigation/int3 per_channel", "mitigation/int3 group64"}));
}

// The naive baseline (issue 22): once the key magnitudes are stored, the k layers with the
// largest keys are protected beside the k critical ones, derived from the key_magnitudes cell,
// which is the channel ablation's own pass (one cell for both).
TEST(DiagnosisPlan, ProtectionComparesTheCriticalLayersWithTheLargestKeys) {
  const GridSpec grid = parse_ok("diagnose: {protect_top_k: [1, 2], mitigation_bits: [4]}\n");
  const auto tasks = tasks_of({DiagnosisTask::kProtectionSweep, DiagnosisTask::kChannelAblation});
  ModelDiagnosisFacts known = facts(6, std::vector<int>{4, 1}, {"a1"});
  const DiagnosisPlan before = plan_diagnosis(grid, {known}, tasks);
  EXPECT_EQ(cell_of(before, "protection_sweep", "key_magnitudes").id,
            cell_of(before, "channel_ablation", "key_magnitudes").id);
  EXPECT_THROW(cell_of(before, "protection_sweep", "int4 fp16 key-norm top1"), std::runtime_error);
  known.key_norm_layers = std::vector<int>{2, 5, 0, 1, 3, 4};
  known.key_norm_from = {cell_of(before, "protection_sweep", "key_magnitudes").id};
  const DiagnosisPlan after = plan_diagnosis(grid, {known}, tasks);
  const Cell& top2 = cell_of(after, "protection_sweep", "int4 fp16 key-norm top2");
  EXPECT_EQ(top2.kv_label, "int4-ptok-asym+fp16[2,5]");
  EXPECT_EQ(top2.derived_from, known.key_norm_from);
  EXPECT_EQ(cell_of(after, "protection_sweep", "int4 fp16 key-norm top1").kv_label, "int4-ptok-asym+fp16[2]");
  EXPECT_EQ(cell_of(after, "protection_sweep", "int4 fp16 top2").kv_label, "int4-ptok-asym+fp16[1,4]");
  for (const std::string& waiting : after.waiting) EXPECT_EQ(waiting.find("key-norm"), std::string::npos) << waiting;
}

TEST(DiagnosisPlan, KnowingTheCriticalLayersAddsCellsAndKeepsEveryEarlierId) {
  const GridSpec grid = parse_ok("diagnose: {protect_top_k: [1, 2, 5]}\n");
  const auto all = tasks_of({DiagnosisTask::kLayerAblation, DiagnosisTask::kPcr, DiagnosisTask::kProtectionSweep,
                             DiagnosisTask::kMitigation});
  const DiagnosisPlan before = plan_diagnosis(grid, {facts(6)}, all);
  const std::vector<std::string> from = {"b0", "a1"};
  const DiagnosisPlan after = plan_diagnosis(grid, {facts(6, std::vector<int>{4, 1}, from)}, all);
  const auto ids_before = ids_of(before);
  const auto ids_after = ids_of(after);
  EXPECT_TRUE(std::includes(ids_after.begin(), ids_after.end(), ids_before.begin(), ids_before.end()));
  // Only protection's key-norm baseline still waits (for its key magnitudes, not for these layers).
  EXPECT_EQ(after.waiting, (std::vector<std::string>{"m: protection_sweep's key-norm baseline waits for the key "
                                                     "magnitudes"}));
  // PCR: the per-tensor arm IS the ablation cell of the top critical layer; per-channel is new.
  EXPECT_EQ(cell_of(after, "pcr", "per_tensor").id, cell_of(after, "layer_ablation", "layer 4").id);
  const Cell& pc = cell_of(after, "pcr", "per_channel");
  EXPECT_EQ(pc.kv_label, "int3-pchan-sym@[4]");
  EXPECT_EQ(pc.derived_from, (std::vector<std::string>{"a1", "b0"}));  // sorted
  // Protection: k capped at the 2 critical layers found (no top-5); FP16 and 8-bit arms.
  EXPECT_EQ(cell_of(after, "protection_sweep", "int4 fp16 top2").kv_label, "int4-ptok-asym+fp16[1,4]");
  EXPECT_EQ(cell_of(after, "protection_sweep", "int3 int8 top1").kv_label, "int3-ptok-asym+int8-ptensor-sym[4]");
  EXPECT_THROW(cell_of(after, "protection_sweep", "int4 fp16 top5"), std::runtime_error);
  // Mitigation at the critical layer: the paper's fp16_critical (rest per tensor) and the clean one.
  EXPECT_EQ(cell_of(after, "mitigation", "int3 fp16_critical").kv_label, "int3-ptensor-asym+fp16[4]");
  EXPECT_EQ(cell_of(after, "mitigation", "int3 fp16_critical_clean").kv_label, "int3-ptok-asym+fp16[4]");
  EXPECT_EQ(cell_of(after, "mitigation", "int4 perchannel_critical_group64").kv_label,
            "int4-g64-asym+int4-pchan-asym[4]");
  // Derived cells' ids include what they came from: other ablation results, other cells.
  const DiagnosisPlan other = plan_diagnosis(grid, {facts(6, std::vector<int>{4, 1}, {"c0"})}, all);
  EXPECT_NE(cell_of(other, "pcr", "per_channel").id, pc.id);
  EXPECT_EQ(cell_of(other, "pcr", "per_tensor").id, cell_of(after, "pcr", "per_tensor").id);
}

TEST(DiagnosisPlan, NoCriticalLayerPlansNothingThatNeedsOne) {
  const GridSpec grid = parse_ok("");
  const DiagnosisPlan plan = plan_diagnosis(grid, {facts(3, std::vector<int>{})}, tasks_of({DiagnosisTask::kPcr}));
  EXPECT_EQ(plan.cells.size(), 1U);  // the baseline only
  ASSERT_EQ(plan.waiting.size(), 1U);
  EXPECT_EQ(plan.waiting.front(), "m: pcr has no critical layer to work on (no layer flipped >= 0.1)");
}

TEST(DiagnosisPlan, ExplicitCriticalLayersDeriveNothing) {
  const GridSpec grid = parse_ok("diagnose: {critical_layers: [2], models: [m]}\n");
  const DiagnosisPlan plan =
      plan_diagnosis(grid, {facts(4)}, tasks_of({DiagnosisTask::kPcr, DiagnosisTask::kMitigation}));
  EXPECT_TRUE(plan.waiting.empty());
  for (const Cell& cell : plan.cells) EXPECT_TRUE(cell.derived_from.empty()) << cell.kv_label;
  EXPECT_EQ(cell_of(plan, "pcr", "per_channel").kv_label, "int3-pchan-sym@[2]");
  // The stored results play no part: the same cells whatever the ablation found.
  const DiagnosisPlan with_results = plan_diagnosis(grid, {facts(4, std::vector<int>{0}, {"x"})},
                                                    tasks_of({DiagnosisTask::kPcr, DiagnosisTask::kMitigation}));
  EXPECT_EQ(ids_of(plan), ids_of(with_results));
  EXPECT_THROW(plan_diagnosis(grid, {facts(2)}, tasks_of({DiagnosisTask::kPcr})), InputError);  // layer 2 of 2
}

TEST(DiagnosisPlan, CumulativeAndValidationCells) {
  const GridSpec grid = parse_ok("diagnose: {test_prompts: 50}\n");
  const DiagnosisPlan plan =
      plan_diagnosis(grid, {facts(3)}, tasks_of({DiagnosisTask::kCumulative, DiagnosisTask::kPcrValidation}));
  EXPECT_EQ(cell_of(plan, "cumulative", "front 2").kv_label, "int3-ptensor-sym@[0,1]");
  EXPECT_EQ(cell_of(plan, "cumulative", "back 2").kv_label, "int3-ptensor-sym@[1,2]");
  // Every layer from either end is one cell (the full spec, without a layer list).
  EXPECT_EQ(cell_of(plan, "cumulative", "front 3").id, cell_of(plan, "cumulative", "back 3").id);
  const Cell& g64 = cell_of(plan, "pcr_validation", "group64");
  EXPECT_EQ(g64.kv_label, "int3-g64-sym");
  EXPECT_EQ(g64.benchmark.name, "advbench");
  EXPECT_EQ(g64.n_prompts, 50);
  EXPECT_EQ(plan.cells.size(), 1U + 5U + 1U + 3U);  // calibration baseline, 6 - 1 shared, test baseline, 3 arms
}

TEST(DiagnosisPlan, ChannelAblationWaitsForTheKeyMagnitudesThenQuantizesEachSubsetAlone) {
  const GridSpec grid = parse_ok("diagnose: {calibration_prompts: 6}\n");
  const auto tasks = tasks_of({DiagnosisTask::kLayerAblation, DiagnosisTask::kChannelAblation});
  // Before anything is stored: the key-magnitude pass is planned, the subsets wait.
  const DiagnosisPlan first = plan_diagnosis(grid, {facts(4)}, tasks);
  const Cell& keys = cell_of(first, "channel_ablation", "key_magnitudes");
  EXPECT_EQ(keys.task(), Task::kKeyMagnitudes);
  EXPECT_FALSE(keys.generation.has_value());
  EXPECT_EQ(keys.kv.scheme, KvScheme::kNone);
  EXPECT_EQ(keys.n_prompts, 6);
  EXPECT_EQ(first.waiting,
            (std::vector<std::string>{"m: channel_ablation waits for the critical layers (layer_ablation)"}));
  // Critical layers known, magnitudes not yet.
  ModelDiagnosisFacts known = facts(4, std::vector<int>{2}, {"b", "l"});
  const DiagnosisPlan second = plan_diagnosis(grid, {known}, tasks);
  EXPECT_EQ(second.waiting, (std::vector<std::string>{"m: channel_ablation waits for the key magnitudes"}));
  // Both known: one cell per non-empty subset, at the critical layer, derived from both.
  known.channel_subsets =
      std::vector<ChannelSubset>{{"outliers", {3, 9}}, {"random_matched", {1, 4}}, {"random_1pct", {}}};
  known.channels_from = {keys.id};
  const DiagnosisPlan third = plan_diagnosis(grid, {known}, tasks);
  EXPECT_TRUE(third.waiting.empty());
  const Cell& outliers = cell_of(third, "channel_ablation", "outliers");
  EXPECT_EQ(outliers.kv_label, "int3-ptensor-sym@[2]+ch[3,9]");
  std::vector<std::string> from = {"b", "l", keys.id};
  std::sort(from.begin(), from.end());
  EXPECT_EQ(outliers.derived_from, from);
  EXPECT_EQ(cell_of(third, "channel_ablation", "random_matched").kv_label, "int3-ptensor-sym@[2]+ch[1,4]");
  EXPECT_THROW(cell_of(third, "channel_ablation", "random_1pct"), std::runtime_error);  // empty: skipped
  EXPECT_EQ(cell_of(third, "channel_ablation", "per_tensor").id, cell_of(third, "layer_ablation", "layer 2").id);
  const Cell& per_channel = cell_of(third, "channel_ablation", "per_channel");
  EXPECT_EQ(per_channel.kv_label, "int3-pchan-sym@[2]");
  EXPECT_EQ(per_channel.derived_from, (std::vector<std::string>{"b", "l"}));  // the critical layers' cells only
  const auto detail =
      nlohmann::json::parse(std::find_if(third.roles.begin(), third.roles.end(), [](const DiagnosisRole& r) {
                              return r.arm == "outliers";
                            })->detail_json);
  EXPECT_EQ(detail.at("channels"), 2);
  EXPECT_EQ(detail.at("layer"), 2);
}

TEST(DiagnosisPlan, MitigateVerifiesThePrescribedFixOnTheGridsRefusalBenchmarks) {
  const GridSpec grid = parse_ok("diagnose: {mitigate: auto, mitigation_bits: [4], models: [m]}\n");
  EXPECT_EQ(grid.diagnose.tasks,
            (std::vector<DiagnosisTask>{DiagnosisTask::kLayerAblation, DiagnosisTask::kPcr, DiagnosisTask::kMitigate}));
  const auto tasks = tasks_of({DiagnosisTask::kMitigate});
  EXPECT_EQ(plan_diagnosis(grid, {facts(4)}, tasks).waiting,
            (std::vector<std::string>{"m: mitigate waits for the failure mode (layer_ablation, pcr)"}));
  ModelDiagnosisFacts known = facts(4);
  const std::map<std::string, std::string> expected = {
      {"fp16_critical_layer", "int4-ptok-asym+fp16[2]"},
      {"fp16_top_k", "int4-ptok-asym+fp16[0,2]"},
      {"per_channel_critical_group64_rest", "int4-g64-asym+int4-pchan-asym[2]"},
      {"group64_all", "int4-g64-asym"}};
  for (const auto& [prescription, label] : expected) {
    known.fix = PrescribedFix{.prescription = prescription, .layers = {2, 0}, .decided_from = {"z", "a"}};
    if (prescription != "fp16_top_k") known.fix->layers = {2};
    const DiagnosisPlan plan = plan_diagnosis(grid, {known}, tasks);
    EXPECT_TRUE(plan.waiting.empty()) << prescription;
    const Cell& fix = cell_of(plan, "mitigate", "int4 fix custom");
    EXPECT_EQ(fix.kv_label, label) << prescription;
    EXPECT_EQ(fix.derived_from, (std::vector<std::string>{"a", "z"}));
    EXPECT_EQ(cell_of(plan, "mitigate", "int4 uniform custom").kv_label, "int4-ptok-asym");
    // The grid's own benchmark entry and first generation settings: the full-precision cell IS the
    // grid's own cell.
    const Cell& base = cell_of(plan, "mitigate", "baseline custom");
    const auto grid_cells = expand_grid(grid);
    EXPECT_TRUE(std::any_of(grid_cells.begin(), grid_cells.end(), [&](const Cell& c) { return c.id == base.id; }));
    EXPECT_EQ(base.generation->max_new_tokens, 32);
  }
  known.fix = PrescribedFix{.prescription = "full_fp16", .layers = {0, 1, 2, 3}, .decided_from = {}};
  const DiagnosisPlan nothing = plan_diagnosis(grid, {known}, tasks);
  EXPECT_TRUE(nothing.cells.empty());
  EXPECT_EQ(nothing.waiting,
            (std::vector<std::string>{"m: mitigate has nothing quantized to verify (the prescription is full_fp16)"}));
}

TEST(DiagnosisPlan, ModelsDiagnosedAreTheGridsOrTheListed) {
  EXPECT_EQ(diagnosed_models(parse_ok("")), (std::vector<std::string>{"m", "other"}));
  EXPECT_EQ(diagnosed_models(parse_ok("diagnose: {models: [other]}\n")), (std::vector<std::string>{"other"}));
}

TEST(DiagnosisPlan, ADerivedCellCrossesToAWorkerAsJsonAndHashesTheSame) {
  const GridSpec grid = parse_ok("");
  const DiagnosisPlan plan =
      plan_diagnosis(grid, {facts(6, std::vector<int>{3}, {"f00d", "beef"})}, tasks_of({DiagnosisTask::kPcr}));
  const Cell& pc = cell_of(plan, "pcr", "per_channel");
  const std::string json = canonical_json(pc);
  EXPECT_NE(json.find("\"derived_from\":[\"beef\",\"f00d\"]"), std::string::npos) << json;
  const Cell rebuilt = cell_from_canonical_json(json, grid, pc.id);
  EXPECT_EQ(rebuilt.id, pc.id);
  EXPECT_EQ(rebuilt.kv, pc.kv);
  EXPECT_EQ(rebuilt.model.path, grid.models.front().path);
  EXPECT_EQ(rebuilt.n_prompts, 20);
  EXPECT_EQ(rebuilt.derived_from, pc.derived_from);
  // A grid cell round-trips too, and keeps its JSON without a derived_from key.
  const Cell grid_cell = expand_grid(grid).front();
  EXPECT_EQ(canonical_json(grid_cell).find("derived_from"), std::string::npos);
  EXPECT_EQ(cell_from_canonical_json(canonical_json(grid_cell), grid, grid_cell.id).id, grid_cell.id);
  // Ranks that disagree are told so.
  EXPECT_THROW(cell_from_canonical_json(json, grid, grid_cell.id), InputError);
  EXPECT_THROW(cell_from_canonical_json("{\"task\":", grid, pc.id), InputError);
  GridSpec renamed = grid;
  renamed.models.front().name = "n";
  EXPECT_THROW(cell_from_canonical_json(json, renamed, pc.id), InputError);
}

}  // namespace
}  // namespace kvsafe::orchestrator
