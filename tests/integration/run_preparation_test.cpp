// What `kvsafe run` reads before scheduling (runner/run_preparation.h, model_provenance.h),
// on real data: WikiText windows counted with the model's own tokenizer instead of the
// plan's 300k-token guess, every prompt of a benchmark in the prompts table, and the weights
// hash of a file and of a folder.
#include "runner/run_preparation.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/sha256.h"
#include "eval/benchmark_registry.h"
#include "eval/benchmark_table.h"
#include "eval/perplexity.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"
#include "tests/integration/run_harness.h"
#include "tests/testing/model_files.h"
#include "text/tokenizer.h"
#include "worker/cell_prompts.h"
#include "worker/model_provenance.h"

namespace kvsafe::worker {
namespace {

using runner::count_perplexity_windows;
using runner::register_benchmark_prompts;

std::vector<orchestrator::Cell> expand(const std::string& yaml, const Environment& env) {
  auto parsed = orchestrator::parse_grid_text(yaml, "test.yaml", env, {});
  EXPECT_TRUE(parsed.ok()) << parsed.diagnostics.format();
  return orchestrator::expand_grid(*parsed.grid);
}

std::string stories_grid(const std::string& benchmarks) {
  return "name: prep\nmodels:\n  - {name: stories, path: " + testing::stories260k_gguf_path().string() +
         ", chat_template: llama-2}\nkv_cache: [{scheme: none}]\nbenchmarks:\n" + benchmarks;
}

TEST(RunPreparation, PerplexityCellsGetTheWindowsTheirTokenizerGives) {
  const Environment env = Environment::from_process();
  auto cells = expand(stories_grid("  - {name: wikitext, max_length: 2048, stride: 512}\n"
                                   "  - {name: wikitext, max_length: 256, stride: 128, limit: 5}\n"),
                      env);
  ASSERT_EQ(cells.size(), 2U);
  const std::int64_t planned = orchestrator::perplexity_windows(orchestrator::kWikitextPlanTokens, 2048, 512);
  ASSERT_EQ(cells[0].n_prompts, planned);

  std::string text;
  ASSERT_TRUE(eval::read_corpus_text("wikitext", env.data_dir, eval::CorpusJoin::kRowsJoined, &text).is_ok());
  const auto tokenizer = engine::Tokenizer::load(testing::stories260k_gguf_path());
  const auto tokens = static_cast<std::int64_t>(eval::tokenize_corpus(*tokenizer, text).size());

  count_perplexity_windows(cells, env.data_dir);
  EXPECT_EQ(cells[0].n_prompts, eval::perplexity_window_count(tokens, 2048, 512));
  // stories260K's 512-token vocabulary cuts WikiText into far more tokens than the plan's guess.
  EXPECT_GT(cells[0].n_prompts, 2 * planned);
  EXPECT_EQ(cells[1].n_prompts, 5);  // limit still caps it

  // Without the data the planned count stays (the cell then fails naming the missing file).
  auto missing = expand(stories_grid("  - {name: wikitext}\n"), env);
  count_perplexity_windows(missing, "/nonexistent/kvsafe-data");
  EXPECT_EQ(missing[0].n_prompts, planned);
}

TEST(RunPreparation, PromptsTableHoldsEveryPromptOfTheBenchmarksRun) {
  const Environment env = Environment::from_process();
  const auto cells = expand(stories_grid("  - {name: custom, limit: 4}\n  - {name: xstest, limit: 2}\n"
                                         "  - {name: wikitext, limit: 1}\n"),
                            env);
  testing::ScratchDir dir;
  const auto path = dir / "prompts.db";
  auto store = db::Store::open(path, {});
  register_benchmark_prompts(*store, cells, env.data_dir);
  register_benchmark_prompts(*store, cells, env.data_dir);  // twice: nothing changes
  store.reset();

  eval::Benchmark custom, xstest;
  ASSERT_TRUE(eval::load_benchmark("custom", env.data_dir, {}, &custom).is_ok());
  ASSERT_TRUE(eval::load_benchmark("xstest", env.data_dir, {}, &xstest).is_ok());
  EXPECT_EQ(testing::count(path, "SELECT count(*) FROM prompts WHERE benchmark = 'custom'"),
            static_cast<std::int64_t>(custom.prompts.size()));
  EXPECT_EQ(testing::count(path, "SELECT count(*) FROM prompts WHERE benchmark = 'xstest'"),
            static_cast<std::int64_t>(xstest.prompts.size()));
  EXPECT_EQ(testing::count(path, "SELECT count(*) FROM prompts WHERE benchmark = 'xstest' AND harmful = 0"),
            xstest.benign_count());
  EXPECT_EQ(testing::count(path, "SELECT count(*) FROM prompts WHERE benchmark = 'wikitext'"), 0);
  const auto& last = xstest.prompts.back();
  EXPECT_EQ(testing::count(path, "SELECT count(*) FROM prompts WHERE benchmark = 'xstest' AND prompt_index = " +
                                     std::to_string(xstest.prompts.size() - 1) + " AND prompt_id = '" + last.prompt_id +
                                     "' AND text_sha256 = '" + sha256_hex(last.text) + "'"),
            1);
}

TEST(CellPrompts, SubsetSelectsItsPromptsBeforeLimit) {
  const Environment env = Environment::from_process();
  const auto cells = expand(stories_grid("  - {name: xstest, subset: safe, limit: 40}\n"
                                         "  - {name: xstest, subset: unsafe, task: refusal, limit: 3}\n"
                                         "  - {name: xstest, limit: 40}\n"),
                            env);
  ASSERT_EQ(cells.size(), 3U);
  const eval::Benchmark safe = load_cell_prompts(cells[0].benchmark, env.data_dir);
  const eval::Benchmark unsafe = load_cell_prompts(cells[1].benchmark, env.data_dir);
  const eval::Benchmark mixed = load_cell_prompts(cells[2].benchmark, env.data_dir);
  ASSERT_EQ(static_cast<std::int64_t>(safe.prompts.size()), cells[0].n_prompts);
  ASSERT_EQ(static_cast<std::int64_t>(unsafe.prompts.size()), cells[1].n_prompts);
  EXPECT_EQ(safe.benign_count(), 40);  // the file interleaves blocks of 25: limit alone would mix them
  EXPECT_EQ(unsafe.harmful_count(), 3);
  EXPECT_EQ(mixed.benign_count(), 25);
  EXPECT_NE(safe.prompts[25].prompt_id, mixed.prompts[25].prompt_id);
}

TEST(ModelProvenance, WeightsHashOfAFileAndOfAFolder) {
  EXPECT_EQ(weights_sha256(testing::stories260k_gguf_path()), sha256_file_hex(testing::stories260k_gguf_path()));
  testing::ScratchDir dir;
  std::filesystem::create_directories(dir / "model");
  std::ofstream(dir / "model" / "config.json") << "{\"a\": 1}";
  std::ofstream(dir / "model" / "model.safetensors") << "weights";
  std::ofstream(dir / "model" / "README.md") << "not hashed";
  const std::string expected =
      sha256_hex("config.json\t" + sha256_hex("{\"a\": 1}") + "\nmodel.safetensors\t" + sha256_hex("weights") + "\n");
  EXPECT_EQ(weights_sha256(dir / "model"), expected);
  std::ofstream(dir / "model" / "README.md") << "edited";
  EXPECT_EQ(weights_sha256(dir / "model"), expected);
  std::ofstream(dir / "model" / "model.safetensors") << "other weights";
  EXPECT_NE(weights_sha256(dir / "model"), expected);
}

}  // namespace
}  // namespace kvsafe::worker
