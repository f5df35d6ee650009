#pragma once
// Cell identity: a cell's id is the SHA-256 of its canonical JSON, so re-running or
// re-registering a grid finds the same cells and never duplicates results.
//
// Canonical JSON (docs/grid.md, "Cell identity"): keys sorted, no whitespace, typed
// values (numbers as numbers: `temperature: 0`, `0.0` and `0.00` all give 0.0), every
// default written out, and only what changes the results:
//   {"benchmark":{...},"generation":{...}|null,"kv":{...},"model":{...},"task":"refusal","version":1}
//   model:      {"chat_template":null|"...","dtype":"auto","name":"..."}   (never the path)
//   kv:         canonical_json(KvSpec)                                      (kv_spec.h)
//   benchmark:  {"limit":null|N,"name":"...","sample":null|N[,"seed":N][,"subset":"..."]
//                [,"max_length":N,"stride":N][,"max_new_tokens":N][,"file_sha256":"..."]}
//               seed only with sample; subset only when set; max_length/stride only for perplexity;
//               file_sha256 (a conversations file's bytes, never its path) only for conversations
//   generation: {"batch_size":N,"max_new_tokens":N,"seed":N,"system_prompt":null|"...",
//                "temperature":x,"top_p":x}; null for tasks that do not generate
//               [,"speculative":{"draft":<model identity of the draft>,"draft_tokens":N,"quantize":"target"}]
//               [,"samples":N]
//               speculative, samples (> 1) and the other optional keys (generation_identity_json)
//               only when set
//   derived_from: ["<cell id>", ...], sorted; written only when not empty (cells a run derives
//                from stored results, orchestrator/diagnosis_plan.h), so grid cells keep their ids
// NOTE: batch_size is part of the identity because the paper's per_tensor/per_channel
// statistics span the batch (reference §1.9), so it can change the outputs. The judge
// is not: it labels stored outputs and the database records which judge did.
// Changing any of this changes every id: bump kCellFormatVersion and say so.

#include <string>
#include <string_view>

#include "orchestrator/cell.h"

namespace kvsafe::orchestrator {

inline constexpr int kCellFormatVersion = 1;

// A double as canonical JSON writes it (shortest round-trip form, "0.0" for zero).
std::string canonical_number(double value);

std::string model_identity_json(const ModelSpec& model);
std::string benchmark_identity_json(const BenchmarkSpec& benchmark);
std::string generation_identity_json(const GenerationSettings& generation);

// Joins the parts' canonical JSON into the cell's (the parts are already canonical).
// `generation_json` is "null" for tasks that do not generate.
std::string compose_cell_json(std::string_view model_json, std::string_view kv_json, std::string_view benchmark_json,
                              std::string_view generation_json, Task task,
                              const std::vector<std::string>& derived_from = {});

// The cell's canonical JSON, recomputed from its parts.
std::string canonical_json(const Cell& cell);

// SHA-256 hex of a canonical JSON text: the cell id.
std::string cell_id_of(std::string_view canonical_json_text);

// The cell a canonical JSON text describes, its model taken from `grid` by name (the path is
// not part of the identity): how a worker learns a cell the scheduler derived during the run.
// The parts that only reports use (indices, label, effective bits, prompt count) are filled
// from the parts. Throws InputError when the text is not a cell's canonical JSON, names a
// model the grid lacks, or does not hash to `expected_id` (ranks reading different grids).
Cell cell_from_canonical_json(std::string_view json, const GridSpec& grid, std::string_view expected_id);

}  // namespace kvsafe::orchestrator
