#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>
#include <spdlog/version.h>
#include <sqlite3.h>
#include <torch/version.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/cpu_kernels.h"
#include "common/version.h"

namespace kvsafe::cli {

std::string version_text() {
  const BuildInfo& build = build_info();
  std::string text = fmt::format("kvsafe {}\n", build.version);
  text += fmt::format("  git commit: {}\n", build.git_commit);
  text += fmt::format("  compiler:   {} ({})\n", build.compiler, build.build_type);
  text += fmt::format("  libtorch:   {}\n", TORCH_VERSION);
  text += fmt::format("  cpu kernels: {}\n", describe_cpu_kernels());
  text += fmt::format("  sqlite:     {} (SQLiteCpp {})\n", sqlite3_libversion(), SQLITECPP_VERSION);
  text += fmt::format("  spdlog:     {}.{}.{}, fmt {}\n", SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH,
                      FMT_VERSION);
  text += fmt::format("  json:       nlohmann {}.{}.{}\n", NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR,
                      NLOHMANN_JSON_VERSION_PATCH);
  return text;
}

}  // namespace kvsafe::cli
