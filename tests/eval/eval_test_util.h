#pragma once
// Helpers of the eval tests: where the shared datasets are, temporary folders, and a real
// HTTP server (python3 -m http.server) on 127.0.0.1 serving a folder.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/testing/temp_dir.h"

namespace kvsafe::eval::testing {

// ../shared/datasets beside the checkout (CI lays shared/ out the same way).
inline std::filesystem::path shared_datasets() {
  return std::filesystem::path(KVSAFE_SOURCE_DIR) / "../shared/datasets";
}

inline bool have_shared_datasets() {
  return std::filesystem::is_directory(shared_datasets());
}

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

using kvsafe::testing::TempDir;  // tests/testing/temp_dir.h

// Copies a folder tree with writable permissions (the shared copy is read-only).
inline void copy_tree(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
  for (const auto& entry : std::filesystem::recursive_directory_iterator(to)) {
    std::filesystem::permissions(entry.path(), std::filesystem::perms::owner_all, std::filesystem::perm_options::add);
  }
}

// `python3 -m http.server 0 --bind 127.0.0.1 --directory DIR` in a child process; the port
// is read from its "Serving HTTP on ... port N" line. Stopped (SIGTERM to that pid) on
// destruction. port() is 0 when it did not start.
class LocalHttpServer {
 public:
  explicit LocalHttpServer(const std::filesystem::path& directory) : log_("http_server") {
    const std::filesystem::path log_file = log_.path() / "server.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string out = log_file.string();
      if (std::freopen(out.c_str(), "w", stdout) == nullptr || std::freopen(out.c_str(), "a", stderr) == nullptr) {
        ::_exit(127);
      }
      ::execlp("python3", "python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
               directory.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int attempt = 0; attempt < 200 && port_ == 0; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const std::string text = slurp(log_file);
      const std::size_t at = text.find(" port ");
      if (at != std::string::npos) port_ = std::atoi(text.c_str() + at + 6);
    }
  }
  ~LocalHttpServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;
  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  TempDir log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace kvsafe::eval::testing
