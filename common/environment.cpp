#include "common/environment.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

namespace kvsafe {
namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

std::filesystem::path cache_home() {
  const std::string xdg = env_or_empty("XDG_CACHE_HOME");
  if (!xdg.empty()) return xdg;
  const std::string home = env_or_empty("HOME");
  return std::filesystem::path(home.empty() ? "/tmp" : home) / ".cache";
}

}  // namespace

Environment Environment::from_process(const std::filesystem::path& start) {
  Environment env;
  env.dataset_cache_dir = cache_home() / "kvsafe" / "datasets";
  if (const std::string data = env_or_empty("KVSAFE_DATA"); !data.empty()) {
    env.data_dir = data;
    env.data_dir_source = "KVSAFE_DATA";
  } else {
    // NOTE: the checkout sits beside ../shared in this project's layout; walking up
    // lets the CLI and tests run from build/ or a subfolder as well.
    std::error_code ignored;
    for (std::filesystem::path dir = std::filesystem::absolute(start, ignored); !dir.empty(); dir = dir.parent_path()) {
      const auto candidate = dir.parent_path() / "shared" / "datasets";
      if (std::filesystem::is_directory(candidate, ignored)) {
        env.data_dir = candidate.lexically_normal();
        env.data_dir_source = "../shared/datasets";
        break;
      }
      if (dir == dir.parent_path()) break;
    }
    if (env.data_dir.empty()) {
      env.data_dir = env.dataset_cache_dir;
      env.data_dir_source = "cache";
    }
  }
  const std::string models = env_or_empty("KVSAFE_MODEL_CACHE");
  env.model_cache_dir = models.empty() ? cache_home() / "kvsafe" / "models" : std::filesystem::path(models);
  env.fault = env_or_empty("KVSAFE_FAULT");
  env.slurm_job_id = env_or_empty("SLURM_JOB_ID");
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t equals = text.find('=');
    if (text.starts_with("SLURM_") && equals != std::string_view::npos) {
      env.slurm_variables.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
    }
  }
  if (const std::string threads = env_or_empty("KVSAFE_THREADS"); !threads.empty()) {
    char* end = nullptr;
    const long value = std::strtol(threads.c_str(), &end, 10);
    env.threads = (*end == '\0' && value > 0 && value <= 4096) ? static_cast<int>(value) : 0;
  }
  env.launched_by_mpi = !env_or_empty("OMPI_COMM_WORLD_SIZE").empty() || !env_or_empty("PMI_SIZE").empty() ||
                        !env_or_empty("PMIX_RANK").empty();
  return env;
}

std::string Environment::cpu_kernels_from_process() {
  return env_or_empty("KVSAFE_CPU_KERNELS");
}

bool Environment::lookup(const std::string& name, std::string* value) const {
  if (name == "KVSAFE_DATA") {
    *value = data_dir.string();
    return true;
  }
  if (name == "KVSAFE_MODEL_CACHE") {
    *value = model_cache_dir.string();
    return true;
  }
  const char* raw = std::getenv(name.c_str());
  if (raw == nullptr) return false;
  *value = raw;
  return true;
}

}  // namespace kvsafe
