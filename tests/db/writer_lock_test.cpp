// One writer per database, checked across real processes (fork).
#include "db/writer_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "db/db_error.h"
#include "db/schema.h"
#include "db/store.h"
#include "tests/db/db_test_util.h"

namespace kvsafe::db {
namespace {

using testing::TempDir;

// Exit codes of the child processes below.
constexpr int kChildRefused = 10;
constexpr int kChildOpened = 11;
constexpr int kChildOtherError = 12;

void write_all(int fd, const std::string& text) {
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n <= 0) return;
    written += static_cast<std::size_t>(n);
  }
}

std::string read_all(int fd) {
  std::string text;
  char buffer[1024];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) text.append(buffer, static_cast<std::size_t>(n));
  return text;
}

// In a child process: tries to open the store for writing, writes the error message (or
// "opened") to fd, and exits with kChildRefused / kChildOpened / kChildOtherError.
// NOTE: _exit, not exit: the child must not run the parent's gtest teardown or close the
// parent's SQLite handles it inherited.
[[noreturn]] void child_try_open(const std::filesystem::path& db, int fd) {
  int code = kChildOtherError;
  try {
    auto store = Store::open(db, StoreOptions{.holder_description = "child writer"});
    write_all(fd, "opened");
    code = kChildOpened;
  } catch (const DbError& error) {
    write_all(fd, error.what());
    code = kChildRefused;
  } catch (const std::exception& error) {
    write_all(fd, error.what());
  }
  ::close(fd);
  ::_exit(code);
}

struct ChildOutcome {
  int exit_code = -1;
  std::string message;
};

ChildOutcome run_child_open(const std::filesystem::path& db) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(pipe_fds[0]);
    child_try_open(db, pipe_fds[1]);
  }
  ::close(pipe_fds[1]);
  ChildOutcome outcome;
  outcome.message = read_all(pipe_fds[0]);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return outcome;
}

TEST(WriterLock, SecondWriterInAnotherProcessIsRefusedNamingTheHolder) {
  TempDir dir;
  const auto db = dir / "results.db";
  auto store = Store::open(db, StoreOptions{.holder_description = "kvsafe run paper.yaml"});

  const ChildOutcome outcome = run_child_open(db);
  EXPECT_EQ(outcome.exit_code, kChildRefused) << outcome.message;
  const std::string& message = outcome.message;
  EXPECT_NE(message.find(db.string() + " is locked for writing by pid " + std::to_string(::getpid()) + " on host "),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("(kvsafe run paper.yaml)"), std::string::npos) << message;
  EXPECT_NE(message.find("wait for it to finish or pass another --db"), std::string::npos) << message;

  // Once the holder closes its store, a new writer gets in.
  store.reset();
  EXPECT_EQ(run_child_open(db).exit_code, kChildOpened);
}

TEST(WriterLock, LockDiesWithItsProcess) {
  TempDir dir;
  const auto db = dir / "results.db";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The holder: opens the store, says so, then waits to be killed (a crash: no cleanup).
    ::close(ready[0]);
    try {
      auto store = Store::open(db, StoreOptions{.holder_description = "doomed writer"});
      write_all(ready[1], "ready");
      for (;;) ::pause();
    } catch (...) {
      ::_exit(kChildOtherError);
    }
  }
  ::close(ready[1]);
  // NOTE: read exactly the 5 bytes of "ready": the child keeps its end open until killed.
  char buffer[5] = {};
  std::size_t got = 0;
  while (got < sizeof(buffer)) {
    const ssize_t n = ::read(ready[0], buffer + got, sizeof(buffer) - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ASSERT_EQ(std::string(buffer, got), "ready");
  ::close(ready[0]);

  try {
    Store::open(db, StoreOptions{});
    ADD_FAILURE() << "a second writer got in while the holder lives";
  } catch (const DbError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("by pid " + std::to_string(pid) + " on host"), std::string::npos) << message;
    EXPECT_NE(message.find("(doomed writer)"), std::string::npos) << message;
  }
  // Read-only opens take no lock and work while the writer lives.
  EXPECT_NO_THROW(Store::open(db, StoreOptions{.read_only = true}));

  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto store = Store::open(db, StoreOptions{});  // no stale lock after a crash
  EXPECT_EQ(store->schema_version(), latest_schema_version());
}

TEST(WriterLock, SameProcessSecondOpenIsRefusedToo) {
  TempDir dir;
  const auto db = dir / "results.db";
  auto lock = WriterLock::acquire(db, "first");
  EXPECT_EQ(lock->holder().pid, ::getpid());
  EXPECT_EQ(lock->lock_path(), WriterLock::lock_path_for(db));
  EXPECT_THROW(WriterLock::acquire(db, "second"), DbError);
  lock.reset();
  EXPECT_NO_THROW(WriterLock::acquire(db, "third"));
}

}  // namespace
}  // namespace kvsafe::db
