#pragma once
// TempDir: a fresh folder for one test, under $TMPDIR (or /tmp), made by mkdtemp so that test
// processes running side by side (ctest -j, several MPI ranks) never share one, and removed
// with everything in it when the object goes — read-only copies of the shared data included.
//
//   kvsafe::testing::TempDir dir("plan");
//   write(dir / "grid.yaml", ...);

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace kvsafe::testing {

class TempDir {
 public:
  // `tag` names the folder (kvsafe-<tag>-XXXXXX) for whoever finds one left by a crash.
  explicit TempDir(std::string_view tag = "test") {
    std::string name(tag);
    for (char& c : name) {
      if (c == '/' || c == ' ') c = '_';
    }
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/kvsafe-" + name + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    // Copies of the read-only shared files keep their modes: make them removable first.
    for (auto it = std::filesystem::recursive_directory_iterator(path_, ignored);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ignored)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all, std::filesystem::perm_options::add,
                                   ignored);
    }
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace kvsafe::testing
