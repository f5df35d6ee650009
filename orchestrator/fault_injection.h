#pragma once
// Fault injection for the runner's tests: $KVSAFE_FAULT (read by common/environment.h),
// parsed here, acted on by the worker loop before each shard. Never set in production.
//
// Grammar: faults separated by ',', each `kind[:key=value]...`:
//   throw:shard=N           the Nth shard (1-based) a worker starts throws (once per worker)
//   throw:kv=LABEL          every shard of the cells with that KV label throws (always fails)
//   exit:rank=R:after=K     rank R calls _exit(kFaultExitCode) before its (K+1)th shard
//   hang:rank=R:after=K     rank R sleeps forever before its (K+1)th shard (a hung worker)
//   sigkill:rank=R:after=K  rank R sends itself SIGKILL before its (K+1)th shard
//   delay:ms=N              every shard starts N ms late (a slow worker: tests of signals)
// `rank=R` is optional for `throw` and `delay` (default: every rank). The in-process worker is rank 0.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvsafe::orchestrator {

inline constexpr int kFaultExitCode = 42;  // the status of an `exit` fault

enum class FaultKind { kThrow, kExit, kHang, kSigkill, kDelay };

struct Fault {
  FaultKind kind = FaultKind::kThrow;
  std::optional<int> rank{};              // only this rank; nullopt: every rank
  std::optional<std::int64_t> shard{};    // throw: the Nth shard started (1-based)
  std::optional<std::string> kv_label{};  // throw: every shard of cells with this KV label
  std::int64_t after = 0;                 // exit/hang/sigkill: shards finished first
  std::int64_t delay_ms = 0;              // delay: milliseconds before each shard
};

class FaultPlan {
 public:
  // Parses $KVSAFE_FAULT; empty text = no fault. Throws InputError naming the bad part.
  static FaultPlan parse(std::string_view text);

  bool empty() const { return faults_.empty(); }
  const std::vector<Fault>& faults() const { return faults_; }

  // The fault to inject before a worker on `rank` starts its `shard_number`th shard (1-based)
  // of a cell with `kv_label`; nullopt: run it normally. The first matching fault wins;
  // delays are not returned here (see delay_ms).
  std::optional<Fault> before_shard(int rank, std::int64_t shard_number, std::string_view kv_label) const;
  // Milliseconds a worker on `rank` waits before each shard (sum of matching delays).
  std::int64_t delay_ms(int rank) const;

 private:
  std::vector<Fault> faults_;
};

}  // namespace kvsafe::orchestrator
