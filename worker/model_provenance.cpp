#include "worker/model_provenance.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/error.h"
#include "common/sha256.h"
#include "text/chat_template.h"
#include "worker/shard_internal.h"

namespace kvsafe::worker {

namespace {

bool is_weights_or_config(const std::filesystem::path& file) {
  const std::string ext = file.extension().string();
  return ext == ".safetensors" || ext == ".gguf" || ext == ".bin" || ext == ".json";
}

}  // namespace

std::string weights_sha256(const std::filesystem::path& path) {
  if (!std::filesystem::is_directory(path)) return sha256_file_hex(path);
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
    if (entry.is_regular_file() && is_weights_or_config(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  Sha256 folder;
  for (const auto& file : files) {
    folder.update(std::filesystem::relative(file, path).generic_string());
    folder.update("\t");
    folder.update(sha256_file_hex(file));
    folder.update("\n");
  }
  return folder.finish_hex();
}

db::ModelRecord model_provenance(const orchestrator::ModelSpec& spec, const engine::Model& model) {
  const auto started = std::chrono::steady_clock::now();
  db::ModelRecord record{.name = spec.name,
                         .path = spec.path.string(),
                         .sha256 = weights_sha256(spec.path),
                         .architecture = model.config().architecture,
                         .n_params = model.parameter_count()};
  try {
    const engine::ChatTemplate chat = detail::chat_template_for(spec);
    record.chat_template = chat.name();
    record.chat_template_sha256 =
        chat.template_sha256().empty() ? sha256_hex("kvsafe-builtin:" + chat.name()) : chat.template_sha256();
  } catch (const InputError& error) {
    spdlog::debug("worker: {} has no chat template we know ({}); recorded without one", spec.name, error.what());
  }
  spdlog::info("worker: {} weights sha256 {} ({:.1f} s)", spec.name, record.sha256.substr(0, 16),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return record;
}

}  // namespace kvsafe::worker
