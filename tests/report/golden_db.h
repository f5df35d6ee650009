#pragma once
// The small results database of the golden-file and browser tests, written through the real
// db::Store: two models, full precision and three bit widths of the per-token asymmetric sweep
// (8, 4, 2), on AdvBench (12 prompts), the custom set (6 refusal + 6 privacy prompts), WikiText
// perplexity (3 windows) and XSTest over-refusal (2 unsafe + 2 safe). Every verdict is chosen by
// hand below, so each table's numbers can be checked by counting (model-a's AdvBench baseline
// complies with one prompt that its quantized cells refuse, its int2 cell leaves one unjudged).

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "db/store.h"

namespace kvsafe::report::golden {

struct GoldenCell {
  std::string kv;
  double effective_bits;
  int bits;  // 16 for full precision
};

inline const std::vector<GoldenCell>& golden_kv() {
  static const std::vector<GoldenCell> kv = {
      {"none", 16, 16}, {"int8-ptok-asym", 8.25, 8}, {"int4-ptok-asym", 4.25, 4}, {"int2-ptok-asym", 2.25, 2}};
  return kv;
}

inline db::CellRecord golden_cell(const std::string& model, const GoldenCell& kv, const std::string& task,
                                  const std::string& benchmark, std::int64_t n) {
  db::CellRecord c;
  c.id = model + "-" + benchmark + "-" + kv.kv;
  c.model = model;
  c.kv_hash = "hash-" + kv.kv;
  c.kv_label = kv.kv;
  c.kv_json = "{\"label\":\"" + kv.kv + "\"}";
  c.kv_effective_bits = kv.effective_bits;
  c.task = task;
  c.benchmark = benchmark;
  c.canonical_json = "{\"benchmark\":{\"name\":\"" + benchmark +
                     "\"},\"generation\":{\"max_new_tokens\":64},\"kv\":\"" + kv.kv + "\",\"model\":{\"name\":\"" +
                     model + "\"}}";
  c.n_prompts = n;
  return c;
}

// One shard of answers: verdicts (1 refused, 0 complied, -1 none), harmful flags, and the divergence
// columns a quantized cell has (KV MSE grows as bits shrink; first-token KL likewise).
inline void golden_answers(db::Store& store, const std::string& id, int bits, const std::vector<int>& refused,
                           const std::vector<bool>& harmful) {
  const db::ShardKey key{.cell_id = id, .begin = 0, .end = static_cast<std::int64_t>(refused.size())};
  ASSERT_TRUE(store.claim_shard(key, "golden"));
  db::ShardResult result{.shard = key};
  for (std::size_t i = 0; i < refused.size(); ++i) {
    db::GenerationRow row;
    row.prompt_index = static_cast<std::int64_t>(i);
    row.prompt_id = "p" + std::to_string(i);
    row.prompt_sha256 = "sha" + std::to_string(i);
    row.rendered_sha256 = "rendered" + std::to_string(i);
    row.output_text = refused[i] == 1 ? "I cannot help with that." : "Sure, here is how.";
    row.prompt_tokens = 10;
    row.output_tokens = 6;
    if (refused[i] >= 0) row.refused = refused[i] == 1;  // -1: no verdict (unjudged)
    row.judge_json = std::string("{\"degenerate\":false,\"harmful\":") + (harmful[i] ? "true" : "false") +
                     ",\"judge\":\"keyword:default:substring\"}";
    if (bits < 16) {
      const double error = std::ldexp(1.0, -bits);  // 2^-bits: 0.00390625 at 8, 0.0625 at 4, 0.25 at 2
      row.kv_mse_key = error;
      row.kv_mse_value = error / 4;
      row.first_token_kl = 2 * error;
    }
    row.seconds = 0.25;
    result.generations.push_back(row);
  }
  store.commit_shard(result);
}

// Verdicts of n prompts: the first `complied` of them complied, the rest refused.
inline std::vector<int> golden_verdicts(int n, int complied) {
  std::vector<int> v(static_cast<std::size_t>(n), 1);
  for (int i = 0; i < complied && i < n; ++i) v[static_cast<std::size_t>(i)] = 0;
  return v;
}

inline void write_golden_database(const std::filesystem::path& path) {
  auto store = db::Store::open(path);
  std::vector<db::PromptRecord> custom;
  for (int i = 0; i < 12; ++i) {
    custom.push_back({.prompt_index = i,
                      .prompt_id = "p" + std::to_string(i),
                      .text = "custom prompt " + std::to_string(i),
                      .category = i % 2 == 0 ? "refusal" : "privacy",
                      .harmful = true,
                      .source = "golden"});
  }
  store->register_prompts("custom", "golden", custom);
  const std::int64_t experiment = store->register_experiment(
      {.name = "golden", .grid_path = "golden.yaml", .grid_sha256 = "0", .grid_text = "name: golden"});
  std::vector<db::CellRecord> cells;
  for (const char* model : {"model-a", "model-b"}) {
    for (const GoldenCell& kv : golden_kv()) {
      cells.push_back(golden_cell(model, kv, "refusal", "advbench", 12));
      cells.push_back(golden_cell(model, kv, "refusal", "custom", 12));
      cells.push_back(golden_cell(model, kv, "perplexity", "wikitext", 3));
      cells.push_back(golden_cell(model, kv, "over_refusal", "xstest", 4));
    }
  }
  store->register_cells(experiment, cells, /*shard_size=*/100);
  const std::vector<bool> all_harmful(12, true);
  // AdvBench flips (the first k of the 12 comply): model-a 0 / 1 / 3 / 8, model-b 0 / 0 / 6 / 12.
  const std::vector<std::vector<int>> advbench_complied = {{0, 1, 3, 8}, {0, 0, 6, 12}};
  // Custom: the first k comply; even prompts are refusal, odd privacy.
  const std::vector<std::vector<int>> custom_complied = {{0, 0, 2, 7}, {0, 1, 5, 12}};
  const std::vector<std::vector<double>> ppl = {{10.0, 10.05, 10.6, 19.0}, {20.0, 20.1, 21.0, 25.0}};
  // XSTest: prompts 0-1 unsafe, 2-3 safe; quantized at 2 bits refuses a safe one and drops an unsafe one.
  const std::vector<bool> xstest_harmful{true, true, false, false};
  for (std::size_t m = 0; m < 2; ++m) {
    const std::string model = m == 0 ? "model-a" : "model-b";
    for (std::size_t k = 0; k < golden_kv().size(); ++k) {
      const GoldenCell& kv = golden_kv()[k];
      std::vector<int> advbench = golden_verdicts(12, advbench_complied[m][k]);
      if (m == 0) {
        // model-a's baseline complies with prompt 11, which every quantized cell refuses
        // (comply->refuse: in the flip either way, not in the conditional flip); int2's answer to
        // prompt 10 has no verdict (out of both flips' pairs).
        if (kv.bits == 16) advbench[11] = 0;
        if (kv.bits == 2) advbench[10] = -1;
      }
      golden_answers(*store, model + "-advbench-" + kv.kv, kv.bits, advbench, all_harmful);
      golden_answers(*store, model + "-custom-" + kv.kv, kv.bits, golden_verdicts(12, custom_complied[m][k]),
                     all_harmful);
      golden_answers(*store, model + "-xstest-" + kv.kv, kv.bits,
                     kv.bits == 2 ? std::vector<int>{0, 1, 1, 0} : std::vector<int>{1, 1, 0, 0}, xstest_harmful);
      const db::ShardKey key{.cell_id = model + "-wikitext-" + kv.kv, .begin = 0, .end = 3};
      ASSERT_TRUE(store->claim_shard(key, "golden"));
      db::ShardResult windows{.shard = key};
      for (std::int64_t w = 0; w < 3; ++w) {
        windows.ppl_windows.push_back(
            {.window_index = w, .begin_token = 100 * w, .n_tokens = 100, .nll_sum = 100 * std::log(ppl[m][k])});
      }
      store->commit_shard(windows);
    }
  }
}

}  // namespace kvsafe::report::golden
