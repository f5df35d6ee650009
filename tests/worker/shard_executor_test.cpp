// ShardExecutor on real shards with stories260K (a real tiny Llama GGUF with no chat
// template of its own: the cells set the grid's chat_template override to llama-2) on the
// paper's custom prompts from ../shared/datasets, and perplexity windows on WikiText.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "common/environment.h"
#include "common/error.h"
#include "common/sha256.h"
#include "eval/benchmark_registry.h"
#include "eval/benchmark_table.h"
#include "eval/perplexity.h"
#include "eval/prompt_sampling.h"
#include "kernels/kv_quant_spec.h"
#include "tests/testing/model_files.h"
#include "tests/worker/custom_prompts_cell.h"
#include "text/chat_template.h"
#include "text/python_text.h"
#include "text/tokenizer.h"
#include "worker/cell_prompts.h"
#include "worker/judge_options.h"
#include "worker/shard_executor.h"

namespace kvsafe::worker {
namespace {

using orchestrator::Cell;
using orchestrator::Task;

std::filesystem::path data_dir() {
  return Environment::from_process().data_dir;
}

bool have_inputs() {
  return std::filesystem::exists(testing::stories260k_gguf_path()) &&
         std::filesystem::exists(data_dir() / "paper_repo" / "refusal.txt");
}

Cell stories_cell(const std::string& kv, std::int64_t n_prompts = 6, std::int64_t batch_size = 2) {
  return test_cells::custom_prompts_cell(kv, {.prompts = n_prompts, .batch_size = batch_size});
}

Cell wikitext_cell(const std::string& kv) {
  Cell cell;
  cell.id = "fedcba9876543210-wikitext-" + kv;
  cell.model.name = "stories260k";
  cell.model.path = testing::stories260k_gguf_path();
  cell.kv = kernels::parse_kv_label(kv);
  cell.kv_label = kv;
  cell.benchmark.name = "wikitext";
  cell.benchmark.task = Task::kPerplexity;
  cell.benchmark.max_length = 64;
  cell.benchmark.stride = 32;
  cell.benchmark.limit = 3;
  cell.n_prompts = 3;
  return cell;
}

// Everything but the timing.
void expect_same_rows(const db::GenerationRow& a, const db::GenerationRow& b) {
  EXPECT_EQ(a.prompt_index, b.prompt_index);
  EXPECT_EQ(a.prompt_id, b.prompt_id);
  EXPECT_EQ(a.prompt_sha256, b.prompt_sha256);
  EXPECT_EQ(a.rendered_sha256, b.rendered_sha256);
  EXPECT_EQ(a.output_text, b.output_text) << "prompt " << a.prompt_index;
  EXPECT_EQ(a.prompt_tokens, b.prompt_tokens);
  EXPECT_EQ(a.output_tokens, b.output_tokens);
  EXPECT_EQ(a.refused, b.refused);
  EXPECT_EQ(a.judge_json, b.judge_json);
  EXPECT_EQ(a.first_token_id, b.first_token_id);
  EXPECT_EQ(a.reference_first_token_id, b.reference_first_token_id);
  EXPECT_EQ(a.first_token_kl, b.first_token_kl);
  EXPECT_EQ(a.kv_mse_key, b.kv_mse_key);
  EXPECT_EQ(a.kv_mse_value, b.kv_mse_value);
}

class ShardExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_inputs()) GTEST_SKIP() << "stories260K or ../shared/datasets missing";
  }
  ShardExecutor executor_{{.data_dir = data_dir(), .threads = 1}};
};

TEST_F(ShardExecutorTest, FillsEveryFieldOfEveryRow) {
  const Cell cell = stories_cell("none");
  int progress_calls = 0;
  const db::ShardResult result = executor_.run(cell, 0, 4, [&](const ShardProgress& p) {
    ++progress_calls;
    EXPECT_GT(p.prompts_done, 0);
  });
  EXPECT_EQ(executor_.loaded_model(), "stories260k");
  EXPECT_EQ(result.shard.cell_id, cell.id);
  EXPECT_EQ(result.shard.begin, 0);
  EXPECT_EQ(result.shard.end, 4);
  EXPECT_EQ(progress_calls, 2);  // one per batch of 2
  EXPECT_TRUE(result.ppl_windows.empty());
  ASSERT_EQ(result.generations.size(), 4u);
  for (std::size_t i = 0; i < result.generations.size(); ++i) {
    const db::GenerationRow& row = result.generations[i];
    EXPECT_EQ(row.prompt_index, static_cast<std::int64_t>(i));
    EXPECT_FALSE(row.prompt_id.empty());
    EXPECT_EQ(row.prompt_sha256.size(), 64u);
    EXPECT_EQ(row.rendered_sha256.size(), 64u);
    EXPECT_NE(row.prompt_sha256, row.rendered_sha256);
    EXPECT_GT(row.prompt_tokens, 5);
    EXPECT_GT(row.output_tokens, 0);
    EXPECT_LE(row.output_tokens, 12);
    EXPECT_FALSE(row.output_text.empty());
    ASSERT_TRUE(row.refused.has_value());
    EXPECT_GT(row.seconds, 0.0);
    const auto judge = nlohmann::json::parse(row.judge_json);
    EXPECT_EQ(judge.at("judge"), "keyword:default:substring");
    EXPECT_TRUE(judge.at("harmful").get<bool>());  // custom prompts are all harmful
    EXPECT_TRUE(judge.contains("matched_marker"));
    EXPECT_TRUE(judge.contains("degenerate"));
    EXPECT_TRUE(judge.contains("degeneracy_reason"));
    EXPECT_EQ(*row.refused, !judge.at("matched_marker").get<std::string>().empty());
  }
  EXPECT_NE(result.generations[0].prompt_id, result.generations[1].prompt_id);
}

// generation.samples: cell index i is prompt i / samples, each index with its own sampling seed,
// so one prompt's samples differ while a rerun of the shard gives the same answers.
TEST_F(ShardExecutorTest, SampledCellsDrawSeveralAnswersPerPrompt) {
  Cell cell = stories_cell("none", 2);
  cell.generation->temperature = 1.0;
  cell.generation->samples = 3;
  cell.generation->batch_size = 3;  // a prompt's samples share a batch, in both runs below
  cell.n_prompts = 6;
  const db::ShardResult result = executor_.run(cell, 0, 6);
  ASSERT_EQ(result.generations.size(), 6U);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(result.generations[i].prompt_index, static_cast<std::int64_t>(i));
    EXPECT_EQ(result.generations[i].prompt_id, result.generations[i / 3 * 3].prompt_id);
    EXPECT_EQ(result.generations[i].rendered_sha256, result.generations[i / 3 * 3].rendered_sha256);
  }
  EXPECT_NE(result.generations[0].prompt_id, result.generations[3].prompt_id);
  // Three samples at temperature 1 of a 260K-parameter model: not all alike.
  EXPECT_FALSE(result.generations[0].output_text == result.generations[1].output_text &&
               result.generations[1].output_text == result.generations[2].output_text);
  const db::ShardResult again = executor_.run(cell, 3, 6);
  for (std::size_t i = 0; i < 3; ++i) expect_same_rows(again.generations[i], result.generations[3 + i]);
  EXPECT_THROW((void)executor_.run(cell, 0, 7), InputError);  // past prompts x samples
}

// benchmark conversations: a prompt's earlier turns are rendered before its last user turn (the
// KV cache holds them when the request arrives); the row names the conversation and its last turn
// is what the judge read.
TEST_F(ShardExecutorTest, ConversationsRenderEveryTurnBeforeTheRequest) {
  const auto file = std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests/eval/fixtures/conversations_two_turn.jsonl";
  Cell cell = stories_cell("none", 3);
  cell.benchmark.name = "conversations";
  cell.benchmark.limit.reset();
  cell.benchmark.file = file;
  cell.benchmark.file_sha256 = sha256_file_hex(file);
  cell.benchmark.file_prompts = 3;
  const db::ShardResult result = executor_.run(cell, 0, 3);
  ASSERT_EQ(result.generations.size(), 3U);
  const eval::Benchmark conversations = eval::load_conversations(file, "conversations_two_turn.jsonl");
  const auto tokenizer = engine::Tokenizer::load(testing::stories260k_gguf_path());
  const engine::ChatTemplate chat = engine::ChatTemplate::by_name("llama-2");
  for (std::size_t i = 0; i < 3; ++i) {
    const eval::Prompt& prompt = conversations.prompts[i];
    std::vector<engine::ChatMessage> turns;
    for (const eval::ConversationTurn& t : prompt.prior_turns) {
      turns.push_back(
          {.role = t.role == "user" ? engine::ChatRole::kUser : engine::ChatRole::kAssistant, .content = t.content});
    }
    turns.push_back({.role = engine::ChatRole::kUser, .content = prompt.text});
    const engine::TokenizedChat expected = chat.tokenize(*tokenizer, turns, {.merge_system_into_first_user = true});
    const db::GenerationRow& row = result.generations[i];
    EXPECT_EQ(row.prompt_id, prompt.prompt_id);
    EXPECT_EQ(row.prompt_sha256, prompt.text_sha256);
    EXPECT_EQ(row.rendered_sha256, sha256_hex(expected.rendered.text)) << i;
    EXPECT_EQ(row.prompt_tokens, static_cast<std::int64_t>(expected.ids.size()));
    EXPECT_EQ(nlohmann::json::parse(row.judge_json).at("harmful").get<bool>(), prompt.harmful);
  }
  EXPECT_NE(result.generations[0].rendered_sha256.find_first_not_of('0'), std::string::npos);
  // An edited file is refused rather than run under the old cells' names.
  cell.benchmark.file_sha256 = std::string(64, '0');
  EXPECT_THROW((void)executor_.run(cell, 0, 1), InputError);
}

TEST_F(ShardExecutorTest, SameShardTwiceGivesTheSameRows) {
  const Cell cell = stories_cell("int4-ptok-asym");
  const db::ShardResult a = executor_.run(cell, 2, 6);
  const db::ShardResult b = executor_.run(cell, 2, 6);
  ASSERT_EQ(a.generations.size(), 4u);
  ASSERT_EQ(b.generations.size(), 4u);
  for (std::size_t i = 0; i < a.generations.size(); ++i) expect_same_rows(a.generations[i], b.generations[i]);
}

TEST_F(ShardExecutorTest, TwoShardsGiveTheRowsOfOne) {
  for (const char* kv : {"none", "int4-ptok-asym"}) {
    SCOPED_TRACE(kv);
    const Cell cell = stories_cell(kv);
    const db::ShardResult whole = executor_.run(cell, 0, 6);
    const db::ShardResult first = executor_.run(cell, 0, 2);
    const db::ShardResult second = executor_.run(cell, 2, 6);
    ASSERT_EQ(whole.generations.size(), 6u);
    for (std::size_t i = 0; i < 2; ++i) expect_same_rows(whole.generations[i], first.generations[i]);
    for (std::size_t i = 2; i < 6; ++i) expect_same_rows(whole.generations[i], second.generations[i - 2]);
  }
}

// A split that cuts a batch changes which prompts share it (and so the padding and the
// batch shape); with greedy decoding only float noise can differ. Reported, not asserted
// beyond "most agree": the engine documents the same for batch shapes.
TEST_F(ShardExecutorTest, BatchCompositionChangesAtMostFloatNoise) {
  const Cell cell = stories_cell("none", 6, 4);
  const db::ShardResult whole = executor_.run(cell, 0, 6);  // batches {0..3}, {4, 5}
  const db::ShardResult one = executor_.run(cell, 0, 1);    // batch {0}
  const db::ShardResult rest = executor_.run(cell, 1, 6);   // batches {1, 2, 3}, {4, 5}
  int differ = 0;
  for (std::size_t i = 0; i < 6; ++i) {
    const db::GenerationRow& split = i == 0 ? one.generations[0] : rest.generations[i - 1];
    if (split.output_text != whole.generations[i].output_text) ++differ;
  }
  std::cout << "[ report ] prompts whose greedy answer changed with the batch composition: " << differ << " of 6\n";
  EXPECT_LE(differ, 1);
}

TEST_F(ShardExecutorTest, QuantizedCacheChangesTheAnswers) {
  const db::ShardResult exact = executor_.run(stories_cell("none"), 0, 6);
  const db::ShardResult quant = executor_.run(stories_cell("int2-ptok-asym"), 0, 6);
  int differ = 0;
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(exact.generations[i].rendered_sha256, quant.generations[i].rendered_sha256);
    if (exact.generations[i].output_text != quant.generations[i].output_text) ++differ;
  }
  EXPECT_GT(differ, 0);
}

TEST_F(ShardExecutorTest, MissingDataDirIsAnErrorNamingThePath) {
  ShardExecutor executor({.data_dir = "/nonexistent/kvsafe-data", .threads = 1});
  try {
    (void)executor.run(stories_cell("none"), 0, 2);
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("/nonexistent/kvsafe-data"), std::string::npos) << message;
    EXPECT_NE(message.find("refusal.txt"), std::string::npos) << message;
    EXPECT_NE(message.find("shard [0, 2)"), std::string::npos) << message;
  }
}

TEST_F(ShardExecutorTest, RefusesRangesOutsideTheCell) {
  EXPECT_THROW((void)executor_.run(stories_cell("none"), 4, 8), InputError);  // past n_prompts
  EXPECT_THROW((void)executor_.run(stories_cell("none"), 3, 3), InputError);  // empty
}

// A model judge (eval/model_judge.h) runs in the worker after generation. stories260K as the
// judge cannot write WildGuard's answer format: its answers are unparsed, so the rows have no
// verdict (never "complied") and keep the raw judge output.
TEST_F(ShardExecutorTest, ModelJudgeVerdictsAndUnparsedAnswers) {
  orchestrator::JudgeSpec judge{.kind = orchestrator::JudgeKind::kModel, .model = "stories-as-judge"};
  judge.model_path = testing::stories260k_gguf_path();
  ShardExecutor judged({.data_dir = data_dir(), .threads = 1, .judge = judge});
  const db::ShardResult result = judged.run(stories_cell("none"), 0, 2);
  ASSERT_EQ(result.generations.size(), 2u);
  for (const db::GenerationRow& row : result.generations) {
    const auto details = nlohmann::json::parse(row.judge_json);
    EXPECT_EQ(details.at("judge"), "model:stories260K.gguf:wildguard");
    EXPECT_TRUE(details.contains("raw"));
    EXPECT_TRUE(details.contains("degenerate"));
    EXPECT_TRUE(details.at("harmful").get<bool>());
    EXPECT_EQ(row.refused.has_value(), details.at("parsed").get<bool>()) << row.judge_json;
  }
  // A judge named by a grid `models` name that is not the judged model needs its path.
  ShardExecutor unnamed(
      {.data_dir = data_dir(), .judge = {.kind = orchestrator::JudgeKind::kModel, .model = "wildguard"}});
  try {
    (void)unnamed.run(stories_cell("none"), 0, 2);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("judge model `wildguard`"), std::string::npos) << e.what();
  }
}

// The paper's rule for judge outputs that do not parse (stories260K as a judge rarely writes
// WildGuard's format): counted as not refused, and judge_json says so.
TEST_F(ShardExecutorTest, UnparsedJudgeOutputsCountAsNotRefusedUnderThePapersRule) {
  orchestrator::JudgeSpec judge{.kind = orchestrator::JudgeKind::kModel, .model = "stories-as-judge"};
  judge.model_path = testing::stories260k_gguf_path();
  judge.unparsed = orchestrator::UnparsedVerdict::kNotRefused;
  // The paper's WildGuard prompt (profile: paper's default template), named in the label.
  judge.template_file = data_dir() / "refusal_markers" / "judge_prompts" / "wildguard_paper.txt";
  ShardExecutor judged({.data_dir = data_dir(), .threads = 1, .judge = judge});
  const db::ShardResult result = judged.run(stories_cell("none"), 0, 4);
  int unparsed = 0;
  for (const db::GenerationRow& row : result.generations) {
    const auto details = nlohmann::json::parse(row.judge_json);
    EXPECT_EQ(details.at("judge"), "model:stories260K.gguf:wildguard:wildguard_paper.txt+unparsed-not-refused");
    ASSERT_TRUE(row.refused.has_value()) << row.judge_json;  // every answer has a verdict now
    if (!details.at("parsed").get<bool>()) {
      ++unparsed;
      EXPECT_FALSE(*row.refused);
      EXPECT_EQ(details.at("unparsed_counted_as"), "not_refused");
    } else {
      EXPECT_FALSE(details.contains("unparsed_counted_as"));
    }
  }
  EXPECT_GT(unparsed, 0) << "stories260K parsed as a judge every time: the test no longer exercises the rule";
}

// A model's own system prompt (models[].system_prompt) reaches the rendered prompt, and the
// generation's system prompt, when set, wins over it.
TEST_F(ShardExecutorTest, TheModelsSystemPromptIsRenderedUnlessTheGenerationSetsOne) {
  const auto rendered = [&](const Cell& cell) { return executor_.run(cell, 0, 1).generations.at(0).rendered_sha256; };
  const Cell plain = stories_cell("none", 2);
  Cell own = plain;
  own.model.system_prompt = "Answer in one word.";
  Cell both = own;
  both.generation->system_prompt = "Answer at length.";
  Cell generation_only = plain;
  generation_only.generation->system_prompt = "Answer at length.";
  EXPECT_NE(rendered(own), rendered(plain));
  EXPECT_EQ(rendered(both), rendered(generation_only));
  EXPECT_NE(rendered(both), rendered(own));
}

// The paper's text handling (generation.strip_prompts, clean_answers): XSTest's prompt 413 ends
// in a space that the paper strips before the template; answers go through transformers'
// clean_up_tokenization_spaces and str.strip() before they are stored and judged.
TEST_F(ShardExecutorTest, ThePapersStripAndCleanUp) {
  Cell xstest = stories_cell("none", 414, 1);
  xstest.model.chat_template = "chatml";  // llama-2's template strips the turn itself
  xstest.benchmark.name = "xstest";
  xstest.benchmark.task = Task::kOverRefusal;
  Cell stripped = xstest;
  stripped.generation->strip_prompts = true;
  const db::GenerationRow as_is = executor_.run(xstest, 413, 414).generations.at(0);
  const db::GenerationRow strip = executor_.run(stripped, 413, 414).generations.at(0);
  EXPECT_EQ(as_is.prompt_sha256, strip.prompt_sha256);  // the stored prompt is the benchmark's
  EXPECT_NE(as_is.rendered_sha256, strip.rendered_sha256);
  // The same greedy answers, cleaned: what decode(clean_up_tokenization_spaces=True).strip() gives.
  // Seven tokens end stories260K's answers on a space ("\"Here!\" "): something to strip.
  Cell plain = test_cells::custom_prompts_cell(
      "none", {.prompts = 8, .batch_size = 4, .max_new_tokens = 7, .id_tag = "clean", .chat_template = "chatml"});
  Cell cleaned = plain;
  cleaned.generation->clean_answers = true;
  const db::ShardResult raw = executor_.run(plain, 0, 8);
  const db::ShardResult clean = executor_.run(cleaned, 0, 8);
  int changed = 0;
  for (std::size_t i = 0; i < raw.generations.size(); ++i) {
    EXPECT_EQ(clean.generations[i].output_text,
              text::python_strip(text::clean_up_tokenization(raw.generations[i].output_text)));
    changed += clean.generations[i].output_text != raw.generations[i].output_text ? 1 : 0;
  }
  EXPECT_GT(changed, 0) << "no answer had anything to clean: the test no longer exercises clean_answers";
}

// `bos: paper`: llama-2's template writes <s> and stories260K's vocabulary adds BOS, so the
// paper's two-step tokenization gives the prompt one token more, and a different first token pair.
TEST_F(ShardExecutorTest, ThePapersDoubleBosReachesTheModel) {
  const Cell once = stories_cell("none", 2);
  Cell paper = once;
  paper.generation->paper_bos = true;
  const db::GenerationRow a = executor_.run(once, 0, 1).generations.at(0);
  const db::GenerationRow b = executor_.run(paper, 0, 1).generations.at(0);
  EXPECT_EQ(b.prompt_tokens, a.prompt_tokens + 1);
  EXPECT_EQ(a.rendered_sha256, b.rendered_sha256);  // the same text, tokenized differently
}

// A keyword judge's spaceless fallback for some models only (the paper: Yi's): the worker's
// judge options turn it on for those models and off for the others, while every row of the run
// carries one label naming the rule, so the run's verdicts are one judge's (tables refuse a mix).
TEST_F(ShardExecutorTest, SpacelessFallbackFollowsTheJudgedModelUnderOneLabel) {
  orchestrator::JudgeSpec judge;
  judge.strip_spaces_models = {"yi-like"};
  judge.exact_apostrophes = true;
  Cell yi = stories_cell("none", 2);
  yi.model.name = "yi-like";
  const Cell other = stories_cell("none", 2);
  EXPECT_TRUE(refusal_judge_options(judge, yi.model, "cpu", 1).keyword.spaceless_fallback);
  EXPECT_FALSE(refusal_judge_options(judge, other.model, "cpu", 1).keyword.spaceless_fallback);
  ShardExecutor executor({.data_dir = data_dir(), .threads = 1, .judge = judge});
  for (const Cell& cell : {yi, other, yi}) {
    for (const db::GenerationRow& row : executor.run(cell, 0, 2).generations) {
      EXPECT_EQ(nlohmann::json::parse(row.judge_json).at("judge"),
                "keyword:default:substring+spaceless[yi-like]+exact-apostrophes")
          << cell.model.name;
    }
  }
}

TEST_F(ShardExecutorTest, PerplexityWindowsAreShardIndices) {
  if (!std::filesystem::exists(data_dir() / "wikitext-2" / "wiki.test.raw")) GTEST_SKIP() << "no WikiText";
  const Cell cell = wikitext_cell("none");
  const auto started = std::chrono::steady_clock::now();
  const db::ShardResult whole = executor_.run(cell, 0, 3);
  std::cout << "[ report ] stories260K wikitext shard (tokenize the corpus + 3 windows of 64): "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() << " s\n";
  EXPECT_TRUE(whole.generations.empty());
  ASSERT_EQ(whole.ppl_windows.size(), 3u);
  for (std::int64_t i = 0; i < 3; ++i) {
    const db::PplWindowRow& w = whole.ppl_windows[static_cast<std::size_t>(i)];
    EXPECT_EQ(w.window_index, i);
    EXPECT_EQ(w.begin_token, 32 * i);
    EXPECT_EQ(w.n_tokens, i == 0 ? 63 : 32);
    EXPECT_GT(w.nll_sum, 0.0);
    EXPECT_TRUE(std::isfinite(w.nll_sum));
  }
  const db::ShardResult tail = executor_.run(cell, 1, 3);
  ASSERT_EQ(tail.ppl_windows.size(), 2u);
  EXPECT_EQ(tail.ppl_windows[0].window_index, 1);
  EXPECT_DOUBLE_EQ(tail.ppl_windows[0].nll_sum, whole.ppl_windows[1].nll_sum);

  const db::ShardResult quant = executor_.run(wikitext_cell("int2-ptok-asym"), 0, 3);
  ASSERT_EQ(quant.ppl_windows.size(), 3u);
  EXPECT_NE(quant.ppl_windows[0].nll_sum, whole.ppl_windows[0].nll_sum);  // projection placement quantizes the prefill
}

// The grid's limit comes before its sample (docs/grid.md), unlike eval::LoadOptions.
TEST_F(ShardExecutorTest, CellPromptsTakeTheLimitThenTheSample) {
  orchestrator::BenchmarkSpec spec{.name = "advbench", .limit = 10, .sample = 4, .seed = 3};
  const eval::Benchmark all = load_cell_prompts({.name = "advbench"}, data_dir());
  const eval::Benchmark cell = load_cell_prompts(spec, data_dir());
  ASSERT_EQ(all.prompts.size(), 520u);
  ASSERT_EQ(cell.prompts.size(), 4u);
  const std::vector<std::size_t> picked = eval::sample_indices(10, 4, 3);
  for (std::size_t i = 0; i < picked.size(); ++i) {
    EXPECT_LT(picked[i], 10u);
    EXPECT_EQ(cell.prompts[i].prompt_id, all.prompts[picked[i]].prompt_id);
  }
  spec.sample.reset();
  EXPECT_EQ(load_cell_prompts(spec, data_dir()).prompts.size(), 10u);
}

// The orchestrator counts a perplexity cell's windows (its n_prompts) with
// orchestrator::perplexity_windows; the worker scores window i with eval::perplexity_window.
// They must agree for every grid the parser accepts (1 <= stride <= max_length).
TEST(PerplexityWindowCount, OrchestratorAndEvalAgree) {
  for (std::int64_t tokens = 2; tokens <= 200; ++tokens) {
    for (std::int64_t max_length = 2; max_length <= 24; ++max_length) {
      for (std::int64_t stride = 1; stride <= max_length; ++stride) {
        ASSERT_EQ(eval::perplexity_window_count(tokens, max_length, stride),
                  orchestrator::perplexity_windows(tokens, max_length, stride))
            << tokens << " " << max_length << " " << stride;
      }
    }
  }
}

}  // namespace
}  // namespace kvsafe::worker
