// The live status line and log lines share stderr: a log line printed while the line is shown
// must appear above it, on its own line, and the status line must be drawn again below it.
// stderr is pointed at a file for the test (dup2), so the bytes can be read back exactly.

#include "common/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kvsafe {
namespace {

class StderrToFile {
 public:
  explicit StderrToFile(const std::filesystem::path& path) : path_(path) {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    std::FILE* file = std::fopen(path.c_str(), "w");
    ::dup2(::fileno(file), STDERR_FILENO);
    std::fclose(file);
  }
  ~StderrToFile() { restore(); }
  std::string restore() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      ::dup2(saved_, STDERR_FILENO);
      ::close(saved_);
      saved_ = -1;
    }
    std::ifstream in(path_, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::filesystem::path path_;
  int saved_ = -1;
};

TEST(Logging, LogLinesPrintAboveTheLiveLine) {
  const auto path = std::filesystem::temp_directory_path() / ("kvsafe_logging_test_" + std::to_string(::getpid()));
  configure_logging({});
  spdlog::default_logger()->set_pattern("%v");
  StderrToFile capture(path);
  show_live_line("shards 1/4");
  spdlog::info("loaded model");
  show_live_line("shards 2/4");
  clear_live_line();
  spdlog::info("done");
  const std::string text = capture.restore();
  std::filesystem::remove(path);
  const std::string erase = "\r\x1b[2K";
  EXPECT_EQ(text,
            erase + "shards 1/4" + erase + "loaded model\n" + "shards 1/4" + erase + "shards 2/4" + erase + "done\n");
}

}  // namespace
}  // namespace kvsafe
