#pragma once
// Runs the real kvsafe binary in a child process and captures what it printed, so the
// CLI is tested exactly as users meet it.

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace kvsafe::testing {

struct ProcessResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Runs `kvsafe <arguments>` (arguments are passed through /bin/sh, so quote them).
inline ProcessResult run_kvsafe(const std::string& arguments, const std::string& environment = "") {
  const auto err_path =
      std::filesystem::temp_directory_path() / ("kvsafe_cli_stderr_" + std::to_string(::getpid()) + ".txt");
  const std::string command =
      environment + " " + KVSAFE_BINARY_DIR "/cli/kvsafe " + arguments + " 2>" + err_path.string();
  ProcessResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> chunk{};
  std::size_t got = 0;
  while ((got = std::fread(chunk.data(), 1, chunk.size(), pipe)) > 0) result.out.append(chunk.data(), got);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.err = read_file(err_path);
  std::filesystem::remove(err_path);
  return result;
}

}  // namespace kvsafe::testing
