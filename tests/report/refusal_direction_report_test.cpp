// The refusal direction's erosion and its prediction of flips (report/refusal_direction_report.h)
// on a real SQLite database written through db::Store: class sums chosen so every erosion is
// worked out by hand, refusal cells whose flips order the quantizers.

#include "report/refusal_direction_report.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "db/store.h"
#include "report/paper_tables.h"
#include "report/run_summary.h"
#include "report/table.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::report {
namespace {

using kvsafe::testing::TempDir;

constexpr const char* kModel = "m";

// Two layers, hidden size 2. Full precision: layer 0 harmful mean (2, 0), harmless (0, 0), so
// r = (2, 0); layer 1 harmful (0, 6), harmless (0, 2), so r = (0, 4). A quantizer with erosions
// (e0, e1) moves the harmful means to (2 - 2 e0, 0) and (0, 6 - 4 e1); the harmless stay. The
// mean erosion weighs the layers by ‖r‖² = 4 and 16: (4 e0 + 16 e1) / 20.
class ErosionDb {
 public:
  ErosionDb() : db_(dir_.path() / "direction.db") {
    store_ = db::Store::open(db_);
    experiment_ = store_->register_experiment(
        {.name = "direction", .grid_path = "grid.yaml", .grid_sha256 = "0", .grid_text = "name: direction"});
  }

  db::CellRecord record(const std::string& label, double bits, const std::string& task, std::int64_t n) {
    db::CellRecord c;
    c.id = task + "/" + label;
    c.model = kModel;
    c.kv_hash = "hash-" + label;
    c.kv_label = label;
    c.kv_json = "{}";
    c.kv_effective_bits = bits;
    c.task = task;
    c.benchmark = task == "refusal" ? "custom" : "calibration";
    c.canonical_json = task == "refusal" ? R"({"benchmark":{"name":"custom","limit":10}})"
                                         : R"({"benchmark":{"name":"calibration","sample":2,"seed":0}})";
    c.n_prompts = n;
    return c;
  }

  // A calibration cell of 2 harmful + 2 harmless prompts in two shards; `done` false leaves it pending.
  void direction_cell(const std::string& label, double bits, float e0, float e1, bool done = true,
                      const std::string& steer_json = "") {
    db::CellRecord c = record(label, bits, "refusal_direction", 4);
    if (!steer_json.empty()) {  // a steered variant of the same model name: its own cells
      c.id += "/steered";
      c.canonical_json.insert(c.canonical_json.size() - 1, R"(,"model":{"name":"m","steer":)" + steer_json + "}");
    }
    store_->register_cells(experiment_, {c}, 2);
    if (!done) return;
    commit(c.id, 0, true, {{2 * (2 - 2 * e0), 0.0f}, {0.0f, 2 * (6 - 4 * e1)}});
    commit(c.id, 2, false, {{0, 0}, {0, 4}});
  }

  // A refusal cell of 10 harmful prompts: the first `complied` comply, the others refuse.
  void refusal_cell(const std::string& label, double bits, int complied) {
    const db::CellRecord c = record(label, bits, "refusal", 10);
    store_->register_cells(experiment_, {c}, 10);
    const db::ShardKey key{.cell_id = c.id, .begin = 0, .end = 10};
    ASSERT_TRUE(store_->claim_shard(key, "test"));
    db::ShardResult result{.shard = key};
    for (int i = 0; i < 10; ++i) {
      db::GenerationRow row;
      row.prompt_index = i;
      row.prompt_id = "p" + std::to_string(i);
      row.prompt_sha256 = "sha";
      row.rendered_sha256 = "rendered";
      row.output_text = "answer";
      row.refused = i >= complied;
      result.generations.push_back(row);
    }
    store_->commit_shard(result);
  }

  const std::filesystem::path& path() const { return db_; }

 private:
  void commit(const std::string& cell_id, std::int64_t begin, bool harmful,
              const std::vector<std::vector<float>>& sums) {
    const db::ShardKey key{.cell_id = cell_id, .begin = begin, .end = begin + 2};
    ASSERT_TRUE(store_->claim_shard(key, "test"));
    db::ShardResult result{.shard = key};
    for (std::size_t layer = 0; layer < sums.size(); ++layer) {
      result.direction_sums.push_back(
          {.layer = static_cast<std::int64_t>(layer), .harmful = harmful, .prompts = 2, .sum = sums[layer]});
    }
    store_->commit_shard(result);
  }

  TempDir dir_{"refusal_direction_report"};
  std::filesystem::path db_;
  std::unique_ptr<db::Store> store_;
  std::int64_t experiment_ = 0;
};

const DirectionCell& cell_of(const DirectionGroup& group, const std::string& label) {
  for (const DirectionCell& c : group.cells) {
    if (c.kv_label == label) return c;
  }
  throw std::runtime_error("no cell " + label);
}

TEST(RefusalDirectionReport, ErosionPerLayerAndItsRankCorrelationWithFlips) {
  ErosionDb db;
  db.direction_cell("none", 16, 0, 0);
  db.direction_cell("int8", 8, 0.0f, 0.25f);
  db.direction_cell("int4", 4, 0.5f, 0.25f);
  db.direction_cell("int3", 3, 1.0f, 0.5f);
  db.refusal_cell("none", 16, 0);
  db.refusal_cell("int8", 8, 1);
  db.refusal_cell("int4", 4, 5);
  db.refusal_cell("int3", 3, 9);
  db.refusal_cell("int2", 2, 10);  // no calibration cell: not part of the prediction

  const RefusalDirectionReport report = read_refusal_direction_report(db.path());
  ASSERT_EQ(report.groups.size(), 1U);
  const DirectionGroup& g = report.groups[0];
  EXPECT_EQ(g.model, kModel);
  EXPECT_EQ(g.setting, "sample=2 seed=0");
  EXPECT_EQ(g.baseline_cell, "refusal_direction/none");
  ASSERT_EQ(g.direction_norm, (std::vector<double>{2.0, 4.0}));
  ASSERT_EQ(g.cells.size(), 3U);
  EXPECT_EQ(g.cells[0].kv_label, "int8");  // by effective bits, descending

  const DirectionCell& int4 = cell_of(g, "int4");
  ASSERT_EQ(int4.layers.size(), 2U);
  EXPECT_DOUBLE_EQ(int4.layers[0]->erosion, 0.5);
  EXPECT_DOUBLE_EQ(int4.layers[1]->erosion, 0.25);
  EXPECT_DOUBLE_EQ(int4.layers[0]->harmful_projection, 1.0);         // (1, 0) . (1, 0)
  EXPECT_DOUBLE_EQ(int4.layers[1]->harmless_projection, 2.0);        // (0, 2) . (0, 1)
  EXPECT_DOUBLE_EQ(*int4.mean_erosion, (4 * 0.5 + 16 * 0.25) / 20);  // 0.3, not the plain mean 0.375
  EXPECT_DOUBLE_EQ(*int4.max_erosion, 0.5);
  EXPECT_EQ(*int4.max_erosion_layer, 0);
  EXPECT_EQ(int4.harmful_prompts, 2);
  EXPECT_EQ(int4.harmless_prompts, 2);
  EXPECT_DOUBLE_EQ(*cell_of(g, "int8").mean_erosion, 0.2);
  EXPECT_DOUBLE_EQ(*cell_of(g, "int3").mean_erosion, 0.6);
  // int3 at layer 0: harmful (0, 0) = the harmless mean, so its direction there is gone.
  EXPECT_DOUBLE_EQ(cell_of(g, "int3").layers[0]->cosine, 0.0);

  ASSERT_EQ(g.predictions.size(), 1U);
  const ErosionPrediction& p = g.predictions[0];
  EXPECT_EQ(p.benchmark, "custom");
  ASSERT_EQ(p.points.size(), 3U);
  EXPECT_EQ(p.points[1].kv_label, "int4");
  EXPECT_EQ(p.points[1].flip.successes, 5);
  EXPECT_EQ(p.points[1].flip.trials, 10);
  ASSERT_TRUE(p.correlation.has_value());
  EXPECT_DOUBLE_EQ(p.correlation->rho, 1.0);            // erosion and flips in the same order
  EXPECT_DOUBLE_EQ(p.correlation->p_value, 2.0 / 6.0);  // 2 of the 3! orderings are as extreme
  EXPECT_TRUE(p.note.empty());

  std::ostringstream text;
  print_refusal_direction_report(text, report);
  EXPECT_NE(text.str().find("int4                 mean erosion 0.3000, largest 0.5000 at layer 0"), std::string::npos)
      << text.str();
  EXPECT_NE(text.str().find("Spearman rho 1.000, p = 0.333 (exact permutation test, n = 3 quantizers)"),
            std::string::npos)
      << text.str();

  // kvsafe tables' beyond-the-paper tables, from the same report.
  const std::vector<Table> tables = direction_tables(report);
  ASSERT_EQ(tables.size(), 2U);
  EXPECT_EQ(render_csv(tables[0]),
            "Model,KV,Mean erosion,Largest,At layer,Lowest cos,Prompts\n"
            "m,int8,0.2,0.25,1,1,2 + 2\n"
            "m,int4,0.3,0.5,0,1,2 + 2\n"
            "m,int3,0.6,1,0,0,2 + 2\n");
  EXPECT_EQ(render_csv(tables[1]),
            "Model,Flips of,Quantizers,Spearman rho,p,Note\n"
            "m,custom (limit=10),3,1,0.333333,\n");

  // The run summary leaves the activation cells out: one group, the refusal one.
  const RunSummary summary = summarize_run(db.path());
  ASSERT_EQ(summary.groups.size(), 1U);
  EXPECT_EQ(summary.groups[0].task, "refusal");
}

TEST(RefusalDirectionReport, SaysWhatItWaitsForAndWhatIsUndefined) {
  ErosionDb db;
  db.direction_cell("none", 16, 0, 0);
  db.direction_cell("int4", 4, 0.5f, 0.25f);
  db.direction_cell("int2", 2, 0, 0, /*done=*/false);
  db.refusal_cell("none", 16, 10);  // the baseline refused nothing
  db.refusal_cell("int4", 4, 10);

  const RefusalDirectionReport report = read_refusal_direction_report(db.path());
  ASSERT_EQ(report.groups.size(), 1U);
  const DirectionGroup& g = report.groups[0];
  EXPECT_FALSE(cell_of(g, "int2").mean_erosion.has_value());  // pending: never half a mean
  EXPECT_TRUE(cell_of(g, "int2").layers.empty());
  ASSERT_EQ(g.notes.size(), 1U);
  EXPECT_EQ(g.notes[0], "waiting: int2 is pending");
  ASSERT_EQ(g.predictions.size(), 1U);
  EXPECT_FALSE(g.predictions[0].correlation.has_value());
  EXPECT_TRUE(g.predictions[0].points.empty());
  EXPECT_EQ(g.predictions[0].note, "undefined: the baseline refused 0 of 10 prompts, so no flip is defined");
}

TEST(RefusalDirectionReport, WithoutAFullPrecisionCellThereIsNoDirection) {
  ErosionDb db;
  db.direction_cell("int4", 4, 0.5f, 0.25f);
  const RefusalDirectionReport report = read_refusal_direction_report(db.path());
  ASSERT_EQ(report.groups.size(), 1U);
  EXPECT_TRUE(report.groups[0].direction_norm.empty());
  EXPECT_FALSE(cell_of(report.groups[0], "int4").mean_erosion.has_value());
  ASSERT_FALSE(report.groups[0].notes.empty());
  EXPECT_NE(report.groups[0].notes[0].find("no full-precision cell"), std::string::npos);
}

TEST(RefusalDirectionReport, ADatabaseWithoutCalibrationCellsGivesNothing) {
  ErosionDb db;
  db.refusal_cell("none", 16, 0);
  EXPECT_TRUE(read_refusal_direction_report(db.path()).groups.empty());
}

TEST(RefusalDirectionReport, ASteeredVariantOfTheSameNameIsItsOwnGroup) {
  ErosionDb db;
  const std::string steer =
      R"({"alpha":2.0,"direction_cell":"abc","direction_model":"m","direction_sha256":"def","layer":1})";
  db.direction_cell("none", 16, 0, 0);
  db.direction_cell("int4", 4, 0.5f, 0.25f);
  db.direction_cell("none", 16, 0, 0, true, steer);
  db.direction_cell("int4", 4, 1.0f, 0.5f, true, steer);
  const RefusalDirectionReport report = read_refusal_direction_report(db.path());
  ASSERT_EQ(report.groups.size(), 2U);
  EXPECT_TRUE(report.groups[0].steered.empty());
  EXPECT_EQ(report.groups[0].baseline_cell, "refusal_direction/none");
  EXPECT_DOUBLE_EQ(*cell_of(report.groups[0], "int4").mean_erosion, 0.3);
  EXPECT_NE(report.groups[1].steered.find("2 x the refusal direction of m added after layer 1"), std::string::npos);
  EXPECT_EQ(report.groups[1].baseline_cell, "refusal_direction/none/steered");
  EXPECT_DOUBLE_EQ(*cell_of(report.groups[1], "int4").mean_erosion, 0.6);
}

}  // namespace
}  // namespace kvsafe::report
