#include "db/writer_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "db/db_error.h"

namespace kvsafe::db {
namespace {

std::string errno_text(int error) {
  return std::strerror(error);
}

std::string host_name() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof(buffer) - 1) != 0) return "unknown-host";
  return buffer;
}

std::string now_iso_utc() {
  const auto now = std::chrono::system_clock::now();
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", std::chrono::floor<std::chrono::seconds>(now));
}

std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = pread(fd, buffer, sizeof(buffer), offset);
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    offset += n;
  }
  return text;
}

std::string own_command_line() {
  // NOTE: read with POSIX calls: /proc files report size 0, and GCC 12 flags a false
  // null dereference in istreambuf_iterator under -Wnull-dereference.
  const int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "unknown command";
  std::string raw = read_all(fd);
  ::close(fd);
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  for (char& c : raw) {
    if (c == '\0') c = ' ';
  }
  return raw.empty() ? "unknown command" : raw;
}

// The refusal message for a lock someone else holds, from the JSON the holder wrote.
std::string describe_holder(const std::filesystem::path& db_path, const std::filesystem::path& lock_path, int fd) {
  const std::string text = read_all(fd);
  std::string who;
  try {
    const nlohmann::json json = nlohmann::json::parse(text);
    who = fmt::format("pid {} on host {} since {} ({})", json.at("pid").get<std::int64_t>(),
                      json.at("host").get<std::string>(), json.at("started_at").get<std::string>(),
                      json.at("command").get<std::string>());
  } catch (const std::exception&) {
    // NOTE: the holder writes its JSON right after taking the lock; a contender can look in
    // between and find the file empty.
    who = fmt::format("another process (it has not yet described itself in {})", lock_path.string());
  }
  return fmt::format("{} is locked for writing by {}; wait for it to finish or pass another --db", db_path.string(),
                     who);
}

}  // namespace

std::filesystem::path WriterLock::lock_path_for(const std::filesystem::path& db_path) {
  std::filesystem::path path = db_path;
  path += ".writer.lock";
  return path;
}

WriterLock::WriterLock(std::filesystem::path lock_path, int fd, WriterLockHolder holder)
    : lock_path_(std::move(lock_path)), fd_(fd), holder_(std::move(holder)) {}

std::unique_ptr<WriterLock> WriterLock::acquire(const std::filesystem::path& db_path, const std::string& command) {
  const std::filesystem::path lock_path = lock_path_for(db_path);
  // NOTE: O_CLOEXEC so programs this process execs do not inherit (and keep) the lock.
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    throw DbError(fmt::format("{}: cannot open the writer lock file {}: {}", db_path.string(), lock_path.string(),
                              errno_text(error)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    std::string message = error == EWOULDBLOCK ? describe_holder(db_path, lock_path, fd)
                                               : fmt::format("{}: cannot lock {}: {}", db_path.string(),
                                                             lock_path.string(), errno_text(error));
    ::close(fd);
    throw DbError(message);
  }
  WriterLockHolder holder{.host = host_name(),
                          .pid = static_cast<std::int64_t>(::getpid()),
                          .started_at = now_iso_utc(),
                          .command = command.empty() ? own_command_line() : command};
  const std::string json =
      nlohmann::json{
          {"host", holder.host}, {"pid", holder.pid}, {"started_at", holder.started_at}, {"command", holder.command}}
          .dump() +
      "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, json.data(), json.size(), 0) != static_cast<ssize_t>(json.size())) {
    const int error = errno;
    ::close(fd);
    throw DbError(fmt::format("{}: cannot write the writer lock file {}: {}", db_path.string(), lock_path.string(),
                              errno_text(error)));
  }
  spdlog::debug("{}: writer lock taken ({})", db_path.string(), lock_path.string());
  return std::unique_ptr<WriterLock>(new WriterLock(lock_path, fd, std::move(holder)));
}

WriterLock::~WriterLock() {
  // Empty the file first, so nobody reads a description of a process that no longer holds it.
  if (::ftruncate(fd_, 0) != 0) {
    spdlog::warn("{}: cannot empty the writer lock file: {}", lock_path_.string(), errno_text(errno));
  }
  ::close(fd_);  // releases the flock
}

}  // namespace kvsafe::db
