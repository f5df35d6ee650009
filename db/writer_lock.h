#pragma once
// WriterLock: at most one writing process per database. DESIGN.md: only rank 0 writes, and
// two `kvsafe run`s on one file would interleave their shards; SQLite's own locks only
// serialize transactions, they do not say "someone else owns this run".
//
// The lock is flock(LOCK_EX | LOCK_NB) on a sidecar file "<db path>.writer.lock", which the
// holder fills with JSON {host, pid, started_at, command} so a refused writer can name it.
// The kernel drops a flock when its process dies (crash, SIGKILL, node reboot), so there
// are no stale locks to clean up by hand; the sidecar file itself is left in place (it is
// emptied on a clean release) because deleting a lock file races with the next opener.
//
// NOTE: flock is advisory and per host on most network file systems; DESIGN.md already
// forbids writing one database from several hosts (use one database per job and merge).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace kvsafe::db {

struct WriterLockHolder {
  std::string host{};        // gethostname() of the holder
  std::int64_t pid = 0;      // the holder's process id
  std::string started_at{};  // ISO-8601 UTC time the lock was taken
  std::string command{};     // what the holder runs, e.g. "kvsafe run experiments/paper.yaml"
};

class WriterLock {
 public:
  // Takes the lock for db_path or throws DbError:
  //   "<db> is locked for writing by pid 1234 on host X since <time> (<command>); wait for it
  //    to finish or pass another --db".
  // command: written into the lock file; empty means this process's /proc/self/cmdline.
  static std::unique_ptr<WriterLock> acquire(const std::filesystem::path& db_path, const std::string& command);

  // Empties the lock file and releases the lock.
  ~WriterLock();
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

  const std::filesystem::path& lock_path() const { return lock_path_; }
  const WriterLockHolder& holder() const { return holder_; }

  // "<db path>.writer.lock"
  static std::filesystem::path lock_path_for(const std::filesystem::path& db_path);

 private:
  WriterLock(std::filesystem::path lock_path, int fd, WriterLockHolder holder);
  std::filesystem::path lock_path_;
  int fd_ = -1;
  WriterLockHolder holder_;
};

}  // namespace kvsafe::db
