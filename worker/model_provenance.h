#pragma once
// What a run records about a model a worker loaded (the runs table's models_json and the
// models row): the weights' SHA-256 as the worker read them, the architecture and parameter
// count the engine found, and the chat template that renders the cell's prompts with its
// hash. Two runs with the same grid but different weights or templates are told apart by
// these, not by the grid's file names.

#include <filesystem>
#include <string>

#include "db/records.h"
#include "engine/model.h"
#include "orchestrator/grid_spec.h"

namespace kvsafe::worker {

// Hex SHA-256 of the weights: of the file itself for a single file (GGUF, safetensors); for a
// folder, of the lines "<relative path>\t<file sha256>\n" over its weight and config files
// (*.safetensors, *.gguf, *.bin, *.json) in path order. Throws IoError naming an unreadable file.
std::string weights_sha256(const std::filesystem::path& path);

// The record for `model` loaded from `spec`. A model whose chat template cannot be determined
// (a base model without one) gets empty template fields; nothing here throws for that.
// Built-in templates (chosen by name) are hashed as "kvsafe-builtin:<name>".
db::ModelRecord model_provenance(const orchestrator::ModelSpec& spec, const engine::Model& model);

}  // namespace kvsafe::worker
