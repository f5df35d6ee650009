// perplexity shards: window i of the cell = shard index i (eval/perplexity.h), scored with
// the cell's KV quantizer, one db::PplWindowRow per window.

#include <spdlog/spdlog.h>

#include <chrono>
#include <string>

#include "common/error.h"
#include "engine/quantized_kv_path.h"
#include "eval/benchmark_registry.h"
#include "eval/perplexity.h"
#include "worker/shard_internal.h"

namespace kvsafe::worker::detail {

namespace {

const std::vector<engine::TokenId>& corpus_tokens(LoadedModel& loaded, const std::string& benchmark,
                                                  const std::filesystem::path& data_dir) {
  const std::string key = benchmark + "\n" + data_dir.string();
  if (loaded.corpus_key != key) {
    std::string text;
    const Status status = eval::read_corpus_text(benchmark, data_dir, eval::CorpusJoin::kRowsJoined, &text);
    if (!status.is_ok()) throw InputError("benchmark " + benchmark + ": " + status.message());
    const auto started = std::chrono::steady_clock::now();
    loaded.corpus_tokens = eval::tokenize_corpus(*loaded.tokenizer, text);
    loaded.corpus_key = key;
    spdlog::info("worker: {} is {} tokens for {} (tokenized in {:.1f} s)", benchmark, loaded.corpus_tokens.size(),
                 loaded.name, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  return loaded.corpus_tokens;
}

}  // namespace

db::ShardResult run_perplexity_shard(LoadedModel& loaded, const orchestrator::Cell& cell, std::int64_t begin,
                                     std::int64_t end, const ShardExecutorOptions& options,
                                     const ShardProgressCallback& on_progress) {
  const std::vector<engine::TokenId>& tokens = corpus_tokens(loaded, cell.benchmark.name, options.data_dir);
  const auto n = static_cast<std::int64_t>(tokens.size());
  const std::int64_t max_length = cell.benchmark.max_length;
  const std::int64_t stride = cell.benchmark.stride;
  const std::int64_t windows = eval::perplexity_window_count(n, max_length, stride);

  const std::unique_ptr<engine::KvPath> kv_path = engine::make_kv_path(cell.kv);
  db::ShardResult result;
  result.shard = {.cell_id = cell.id, .begin = begin, .end = end};
  ShardProgress progress;
  for (std::int64_t i = begin; i < end; ++i) {
    // NOTE: the grid counts windows over a planned token count (orchestrator
    // kWikitextPlanTokens) before any tokenizer has run; windows past the real corpus
    // simply do not exist and give no row.
    if (i >= windows) {
      spdlog::warn("worker: {} window {} does not exist for {} ({} tokens give {} windows at {}/{}); no row",
                   cell.benchmark.name, i, cell.model.name, n, windows, max_length, stride);
      continue;
    }
    const eval::PerplexityWindow window = eval::perplexity_window(i, n, max_length, stride);
    const eval::WindowNll score = eval::score_window(*loaded.model, tokens, window, kv_path.get());
    result.ppl_windows.push_back(
        {.window_index = i, .begin_token = window.begin, .n_tokens = score.n_tokens, .nll_sum = score.nll_sum});
    ++progress.prompts_done;
    if (on_progress) on_progress(progress);
  }
  return result;
}

}  // namespace kvsafe::worker::detail
