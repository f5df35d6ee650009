#pragma once
// Helpers for `kvsafe run`'s integration tests: start the real binary (alone or under
// mpirun) in a child process, wait with a timeout, send it signals, and read the results
// database with SQL. No mocks: a real grid (fixtures/stories_run.yaml), the real
// stories260K model, real SQLite.

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/exit_codes.h"
#include "tests/testing/temp_dir.h"

namespace kvsafe::testing {

inline std::filesystem::path run_fixture(const std::string& name) {
  return std::filesystem::path(KVSAFE_SOURCE_DIR) / "tests" / "integration" / "fixtures" / name;
}

inline std::string kvsafe_binary() {
  return std::string(KVSAFE_BINARY_DIR) + "/cli/kvsafe";
}

// `mpirun -np N` as root, more ranks than cores, the environment variable `KVSAFE_FAULT`
// forwarded (mpirun starts local ranks with its own environment anyway).
inline std::string mpirun(int ranks) {
  return std::string(KVSAFE_MPIEXEC) +
         " --allow-run-as-root --oversubscribe -x KVSAFE_FAULT -x KVSAFE_DATA -x OMP_WAIT_POLICY -np " +
         std::to_string(ranks) + " ";
}

// A fresh folder per test (tests/testing/temp_dir.h), named after the running test.
class ScratchDir : public TempDir {
 public:
  ScratchDir() : TempDir(test_name()) {}

 private:
  static std::string test_name() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return "run_" + std::string(info->test_suite_name()) + "_" + info->name();
  }
};

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A child running `command` through /bin/sh with `environment` assignments in front; its
// stderr goes to a file.
class Child {
 public:
  Child(const std::string& command, const std::string& environment, std::filesystem::path err_path)
      : err_path_(std::move(err_path)) {
    // NOTE: the benchmark data sits beside the checkout (../shared/datasets); the tests run
    // from a scratch folder, so it is named explicitly.
    const std::string data = std::string(KVSAFE_SOURCE_DIR) + "/../shared/datasets";
    // OMP_WAIT_POLICY=passive: spinning OpenMP threads on a busy 2-core machine made a run
    // 10-20x slower (docs/run.md, "Threads").
    const std::string line = "exec env KVSAFE_FAULT= OMP_WAIT_POLICY=passive KVSAFE_DATA=" + data + " " + environment +
                             " " + command + " >/dev/null 2>" + err_path_.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void signal(int number) const { ::kill(pid_, number); }
  // The exit status, or -1 after `timeout` (the child is then killed), -2 when it died of a signal.
  int wait(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (true) {
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
  }
  std::string err() const { return slurp(err_path_); }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::filesystem::path err_path_;
};

struct Finished {
  int exit_code = 0;
  std::string err;
  double seconds = 0;
};

// Runs to the end (at most 80 s: each test stays under 90 s).
inline Finished run_to_end(const std::string& command, const std::string& environment,
                           const std::filesystem::path& err_path) {
  const auto started = std::chrono::steady_clock::now();
  Child child(command, environment, err_path);
  Finished done;
  done.exit_code = child.wait(std::chrono::seconds(80));
  done.err = child.err();
  done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return done;
}

inline std::string run_command(const std::filesystem::path& db, const std::string& grid = "stories_run.yaml") {
  return kvsafe_binary() + " run " + run_fixture(grid).string() + " --db " + db.string();
}

// ---- SQL on the results database ----

inline std::int64_t count(const std::filesystem::path& db, const std::string& sql) {
  SQLite::Database database(db.string(), SQLite::OPEN_READONLY);
  database.exec("PRAGMA busy_timeout = 5000");
  return database.execAndGet(sql).getInt64();
}

// Waits until `sql` counts at least `at_least` (the database may not exist yet).
inline bool wait_for_count(const std::filesystem::path& db, const std::string& sql, std::int64_t at_least,
                           std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (std::filesystem::exists(db) && count(db, sql) >= at_least) return true;
    } catch (const std::exception&) {
      // not created or not migrated yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

using GenerationKey = std::tuple<std::string, std::int64_t, std::string, std::int64_t, int>;

// (cell, prompt index, answer, tokens, refused) of every generation row, in order.
inline std::vector<GenerationKey> generation_rows(const std::filesystem::path& db) {
  SQLite::Database database(db.string(), SQLite::OPEN_READONLY);
  SQLite::Statement query(database,
                          "SELECT cell_id, prompt_index, output_text, output_tokens, COALESCE(refused, -1) "
                          "FROM generations ORDER BY cell_id, prompt_index");
  std::vector<GenerationKey> rows;
  while (query.executeStep()) {
    rows.emplace_back(query.getColumn(0).getString(), query.getColumn(1).getInt64(), query.getColumn(2).getString(),
                      query.getColumn(3).getInt64(), query.getColumn(4).getInt());
  }
  return rows;
}

inline constexpr int kShards = 12;       // fixtures/stories_run.yaml: 3 cells x 4 shards
inline constexpr int kGenerations = 24;  // 3 cells x 8 prompts
using kvsafe::kExitInterrupted;          // common/exit_codes.h

}  // namespace kvsafe::testing
