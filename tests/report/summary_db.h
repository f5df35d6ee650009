#pragma once
// A results database for the report tests, written through the real db::Store: cells with
// hand-chosen verdicts, perplexity windows, and the Wilson interval written out to check them.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "db/store.h"

namespace kvsafe::report {

// Wilson (1927) score interval, written out: centre (p + z²/2n)/(1 + z²/n), half-width
// z/(1 + z²/n) · sqrt(p(1-p)/n + z²/4n²).
inline std::pair<double, double> wilson(double k, double n) {
  const double z = 1.959963984540054, p = k / n, d = 1 + z * z / n;
  const double centre = (p + z * z / (2 * n)) / d;
  const double half = z / d * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n));
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

inline db::CellRecord cell(const std::string& id, const std::string& kv, double bits, const std::string& task,
                           const std::string& benchmark, std::int64_t n) {
  db::CellRecord c;
  c.id = id;
  c.model = "smollm2-135m";
  c.kv_hash = "hash-" + kv;
  c.kv_label = kv;
  c.kv_json = "{\"scheme\":\"" + kv + "\"}";
  c.kv_effective_bits = bits;
  c.task = task;
  c.benchmark = benchmark;
  c.canonical_json = "{\"benchmark\":{\"limit\":" + std::to_string(n) + ",\"name\":\"" + benchmark +
                     "\"},\"generation\":null,\"kv\":\"" + kv + "\"}";
  c.n_prompts = n;
  return c;
}

// Prompt i's stored answer with placeholder hashes and text; callers set the verdict and extras.
inline db::GenerationRow answer_row(std::size_t i) {
  db::GenerationRow row;
  row.prompt_index = static_cast<std::int64_t>(i);
  row.prompt_id = "p" + std::to_string(i);
  row.prompt_sha256 = "sha" + std::to_string(i);
  row.rendered_sha256 = "rendered" + std::to_string(i);
  row.output_text = "answer";
  row.prompt_tokens = 10;
  row.output_tokens = 5;
  return row;
}

// One shard per cell: rows with the given verdicts (-1 = no verdict), harmful flags (and the
// judge's label when given) in judge_json, and answer texts when given.
inline void commit_answers(db::Store& store, const std::string& id, const std::vector<int>& refused,
                           const std::vector<bool>& harmful, const std::vector<bool>& degenerate = {},
                           const std::string& judge_label = "", const std::vector<std::string>& texts = {}) {
  const db::ShardKey key{.cell_id = id, .begin = 0, .end = static_cast<std::int64_t>(refused.size())};
  ASSERT_TRUE(store.claim_shard(key, "test"));
  db::ShardResult result{.shard = key};
  for (std::size_t i = 0; i < refused.size(); ++i) {
    db::GenerationRow row = answer_row(i);
    if (i < texts.size()) row.output_text = texts[i];
    if (refused[i] >= 0) row.refused = refused[i] == 1;
    const bool degen = i < degenerate.size() && degenerate[i];
    row.judge_json = std::string("{\"harmful\":") + (harmful[i] ? "true" : "false") +
                     ",\"degenerate\":" + (degen ? "true" : "false") +
                     (judge_label.empty() ? "" : ",\"judge\":\"" + judge_label + "\"") + "}";
    row.seconds = 0.5;
    result.generations.push_back(row);
  }
  store.commit_shard(result);
}

inline void commit_windows(db::Store& store, const std::string& id, std::int64_t n_windows,
                           const std::vector<double>& ppl) {
  const db::ShardKey key{.cell_id = id, .begin = 0, .end = n_windows};
  ASSERT_TRUE(store.claim_shard(key, "test"));
  db::ShardResult result{.shard = key};
  for (std::size_t i = 0; i < ppl.size(); ++i) {
    result.ppl_windows.push_back({.window_index = static_cast<std::int64_t>(i),
                                  .begin_token = 10 * static_cast<std::int64_t>(i),
                                  .n_tokens = 10,
                                  .nll_sum = 10 * std::log(ppl[i])});
  }
  store.commit_shard(result);
}

// Registers `cells` under one experiment, shards of 100 prompts (every test cell fits one).
inline void register_test_cells(db::Store& store, const std::vector<db::CellRecord>& cells) {
  const std::int64_t experiment =
      store.register_experiment({.name = "test", .grid_path = "g.yaml", .grid_sha256 = "0", .grid_text = "name: test"});
  store.register_cells(experiment, cells, /*shard_size=*/100);
}

}  // namespace kvsafe::report
