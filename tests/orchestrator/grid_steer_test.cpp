// models[i].steer (issue 25's steered testbed): the direction file is read at parse time, its
// hash, layer and alpha enter the model's cell ids (and nothing changes for unsteered models),
// and a wrong file, layer or key is an error at its line.

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "eval/refusal_direction_file.h"
#include "orchestrator/cell_identity.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::orchestrator {
namespace {

class GridSteer : public ::testing::Test {
 protected:
  void SetUp() override {
    eval::write_refusal_direction_file(dir_.path() / "dir.json", {.model = "m",
                                                                  .cell_id = std::string(64, 'c'),
                                                                  .setting = "seed=0",
                                                                  .harmful_prompts = 4,
                                                                  .harmless_prompts = 4,
                                                                  .directions = {{1.0, -2.0}, {0.5, 0.25}}});
  }
  ParseResult parse(const std::string& model_extra) const {
    const std::string yaml =
        "name: t\n"
        "models:\n"
        "  - name: m\n"
        "    path: m.gguf\n" +
        model_extra +
        "kv_cache:\n"
        "  - scheme: none\n"
        "benchmarks:\n"
        "  - name: custom\n";
    Environment env;
    env.data_dir = "/data";
    return parse_grid_text(yaml, "grid.yaml", env, {.base_dir = dir_.path()});
  }
  std::string cell_id(const std::string& model_extra) const {
    const ParseResult result = parse(model_extra);
    EXPECT_TRUE(result.ok()) << result.diagnostics.format();
    return result.ok() ? expand_grid(*result.grid).at(0).id : "";
  }

  testing::TempDir dir_{"grid_steer"};
};

TEST_F(GridSteer, TheDirectionLayerAndAlphaAreInTheCellId) {
  const ParseResult result = parse("    steer: {direction_from: dir.json, layer: 1, alpha: 4}\n");
  ASSERT_TRUE(result.ok()) << result.diagnostics.format();
  const SteerSpec& steer = *result.grid->models.at(0).steer;
  EXPECT_EQ(steer.layer, 1);
  EXPECT_EQ(steer.alpha, 4.0);
  EXPECT_EQ(steer.direction_cell, std::string(64, 'c'));
  EXPECT_EQ(steer.direction_path, dir_.path() / "dir.json");
  EXPECT_EQ(steer.direction_sha256.size(), 64U);

  const std::string plain = cell_id("");
  const std::string alpha4 = cell_id("    steer: {direction_from: dir.json, layer: 1, alpha: 4}\n");
  const std::string alpha2 = cell_id("    steer: {direction_from: dir.json, layer: 1, alpha: 2}\n");
  const std::string layer0 = cell_id("    steer: {direction_from: dir.json, layer: 0, alpha: 4}\n");
  EXPECT_NE(plain, alpha4);
  EXPECT_NE(alpha4, alpha2);
  EXPECT_NE(alpha4, layer0);
  const Cell cell = expand_grid(*result.grid).at(0);
  EXPECT_NE(canonical_json(cell).find("\"steer\":{\"alpha\":4.0"), std::string::npos) << canonical_json(cell);
  // Another direction file with other values: another id.
  eval::write_refusal_direction_file(dir_.path() / "other.json", {.model = "m",
                                                                  .cell_id = std::string(64, 'c'),
                                                                  .setting = "seed=0",
                                                                  .harmful_prompts = 4,
                                                                  .harmless_prompts = 4,
                                                                  .directions = {{1.0, -2.0}, {0.5, 0.5}}});
  EXPECT_NE(alpha4, cell_id("    steer: {direction_from: other.json, layer: 1, alpha: 4}\n"));
}

TEST_F(GridSteer, UnsteeredModelsKeepTheirIds) {
  // The id of an unsteered cell is what it was before steer existed (the canonical JSON of
  // the model has no steer key).
  const ParseResult result = parse("");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(canonical_json(expand_grid(*result.grid).at(0)).find("steer"), std::string::npos);
}

TEST_F(GridSteer, WrongFileLayerOrKeyIsAnErrorAtItsLine) {
  std::ofstream(dir_.path() / "bad.json") << "{\"format\": \"something else\"}";
  const struct {
    std::string extra, expected;
  } cases[] = {
      {"    steer: {direction_from: missing.json, layer: 0}\n", "grid.yaml:5:"},
      {"    steer: {direction_from: missing.json, layer: 0}\n", "cannot read the refusal direction file"},
      {"    steer: {direction_from: bad.json, layer: 0}\n", "format is not kvsafe-refusal-direction/1"},
      {"    steer: {direction_from: dir.json, layer: 2}\n",
       "layer 2 is not in the direction file, which has layers 0..1"},
      {"    steer: {direction_from: dir.json}\n", "missing required key `layer`"},
      {"    steer: {direction_from: dir.json, layer: 0, alpah: 2}\n", "unknown key `alpah` (did you mean `alpha`?)"},
      {"    steer: {direction_from: dir.json, layer: 0, alpha: .nan}\n", "expected a number, got NaN"},
      {"    steer: {direction_from: dir.json, layer: 0, alpha: .inf}\n", "models[0].steer.alpha"},
  };
  for (const auto& c : cases) {
    const ParseResult result = parse(c.extra);
    EXPECT_FALSE(result.ok()) << c.extra;
    EXPECT_NE(result.diagnostics.format().find(c.expected), std::string::npos) << c.extra << " gave:\n"
                                                                               << result.diagnostics.format();
  }
}

}  // namespace
}  // namespace kvsafe::orchestrator
