#pragma once
// What `kvsafe run` reads from the data before it schedules anything (runner/run_grid.cpp):
//  - perplexity cells get their real window count: the grid language plans WikiText as
//    orchestrator::kWikitextPlanTokens tokens, but the model's own tokenizer decides how many
//    windows exist (SmolLM2: 304,978 tokens, 593 windows of 2048/512, not the planned 583).
//    Every rank computes the same count, so shard ranges agree across ranks.
//  - the prompts table gets every prompt of each benchmark the grid generates on (text,
//    category, harmful or benign), so results can be read back by prompt, and the summary
//    and tables need no data directory.
// Missing data is not an error here: the cells that need it fail with the loader's message
// (naming the file) when a worker runs them; this only logs a warning.

#include <filesystem>
#include <vector>

#include "db/store.h"
#include "orchestrator/cell.h"

namespace kvsafe::runner {

// Sets n_prompts of every perplexity cell to the windows its model's tokenizer gives over the
// benchmark's text (then `limit`/`sample` as the grid says). Tokenizes each (model, corpus) once.
void count_perplexity_windows(std::vector<orchestrator::Cell>& cells, const std::filesystem::path& data_dir);

// Registers the prompts of every benchmark that a refusal/over-refusal cell uses, all of the
// benchmark's prompts in file order (prompt_index = position in the file), in one transaction
// per benchmark. Throws DbError when a stored prompt's text changed (Store::register_prompts).
void register_benchmark_prompts(db::Store& store, const std::vector<orchestrator::Cell>& cells,
                                const std::filesystem::path& data_dir);

}  // namespace kvsafe::runner
