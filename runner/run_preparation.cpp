#include "runner/run_preparation.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "eval/benchmark_registry.h"
#include "eval/perplexity.h"
#include "text/tokenizer.h"

namespace kvsafe::runner {

namespace {

bool generates(const orchestrator::Cell& cell) {
  return cell.task() == orchestrator::Task::kRefusal || cell.task() == orchestrator::Task::kOverRefusal ||
         cell.task() == orchestrator::Task::kIfeval;
}

// Tokens of `benchmark`'s text under the tokenizer of `model_path`; nullopt (and a warning)
// when the model or the data cannot be read.
std::optional<std::int64_t> corpus_token_count(const std::filesystem::path& model_path, const std::string& benchmark,
                                               const std::filesystem::path& data_dir) {
  std::string text;
  const Status status = eval::read_corpus_text(benchmark, data_dir, eval::CorpusJoin::kRowsJoined, &text);
  if (!status.is_ok()) {
    spdlog::warn("run: {}: {}; its perplexity cells keep the planned window count", benchmark, status.message());
    return std::nullopt;
  }
  try {
    const auto tokenizer = engine::Tokenizer::load(model_path);
    return static_cast<std::int64_t>(eval::tokenize_corpus(*tokenizer, text).size());
  } catch (const Error& error) {
    spdlog::warn("run: cannot tokenize {} with {}: {}; its perplexity cells keep the planned window count", benchmark,
                 model_path.string(), error.what());
    return std::nullopt;
  }
}

}  // namespace

void count_perplexity_windows(std::vector<orchestrator::Cell>& cells, const std::filesystem::path& data_dir) {
  std::map<std::pair<std::string, std::string>, std::optional<std::int64_t>> tokens;  // (model path, benchmark)
  for (orchestrator::Cell& cell : cells) {
    if (cell.task() != orchestrator::Task::kPerplexity) continue;
    const auto key = std::make_pair(cell.model.path.string(), cell.benchmark.name);
    auto found = tokens.find(key);
    if (found == tokens.end()) {
      found = tokens.emplace(key, corpus_token_count(cell.model.path, cell.benchmark.name, data_dir)).first;
      if (found->second) {
        spdlog::info("run: {} is {} tokens for {}", cell.benchmark.name, *found->second, cell.model.name);
      }
    }
    if (!found->second) continue;
    std::int64_t n = eval::perplexity_window_count(*found->second, cell.benchmark.max_length, cell.benchmark.stride);
    if (cell.benchmark.limit) n = std::min(n, *cell.benchmark.limit);
    if (cell.benchmark.sample) n = std::min(n, *cell.benchmark.sample);
    cell.n_prompts = n;
  }
}

void register_benchmark_prompts(db::Store& store, const std::vector<orchestrator::Cell>& cells,
                                const std::filesystem::path& data_dir) {
  // Benchmark name -> the conversations files of that name (a data benchmark has none).
  std::map<std::string, std::set<std::filesystem::path>> benchmarks;
  for (const auto& cell : cells) {
    if (!generates(cell)) continue;
    auto& files = benchmarks[cell.benchmark.name];
    if (cell.benchmark.file) files.insert(*cell.benchmark.file);
  }
  std::vector<std::pair<std::string, eval::Benchmark>> loaded_sets;
  for (const auto& [name, files] : benchmarks) {
    if (files.empty()) {
      eval::Benchmark loaded;
      const Status status = eval::load_benchmark(name, data_dir, {}, &loaded);
      if (!status.is_ok()) {
        spdlog::warn("run: {}: {}; its cells will fail until the data is there", name, status.message());
        continue;
      }
      loaded_sets.emplace_back(name, std::move(loaded));
    }
    // NOTE: the prompts table is keyed by (benchmark, index): of two conversations files with the
    // same ids, the first registered names the prompts (the judge reads their last user turn).
    for (const std::filesystem::path& file : files) {
      try {
        loaded_sets.emplace_back(name, eval::load_conversations(file, file.string()));
      } catch (const InputError& error) {
        spdlog::warn("run: {}: {}; its cells will fail until the file is fixed", name, error.what());
      }
    }
  }
  for (const auto& [name, loaded] : loaded_sets) {
    std::vector<db::PromptRecord> records;
    records.reserve(loaded.prompts.size());
    std::set<std::string> files;
    for (std::size_t i = 0; i < loaded.prompts.size(); ++i) {
      const eval::Prompt& prompt = loaded.prompts[i];
      records.push_back({.prompt_index = static_cast<std::int64_t>(i),
                         .prompt_id = prompt.prompt_id,
                         .text = prompt.text,
                         .category = prompt.category,
                         .harmful = prompt.harmful,
                         .source = prompt.source_file});
      files.insert(prompt.source_file);
    }
    std::string source;
    for (const auto& file : files) source += (source.empty() ? "" : " ") + file;
    const std::int64_t added = store.register_prompts(name, source, records);
    spdlog::debug("run: {}: {} prompt(s), {} new in the prompts table", name, records.size(), added);
  }
}

}  // namespace kvsafe::runner
