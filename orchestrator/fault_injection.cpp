#include "orchestrator/fault_injection.h"

#include <charconv>

#include "common/error.h"

namespace kvsafe::orchestrator {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    const auto at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) break;
    text.remove_prefix(at + 1);
  }
  return parts;
}

std::int64_t parse_count(std::string_view value, std::string_view part) {
  std::int64_t number = -1;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
  KVSAFE_CHECK(error == std::errc() && end == value.data() + value.size() && number >= 0, "KVSAFE_FAULT: `", part,
               "`: `", value, "` is not a non-negative integer");
  return number;
}

Fault parse_fault(std::string_view part) {
  const auto fields = split(part, ':');
  Fault fault;
  const std::string_view kind = fields[0];
  if (kind == "throw") {
    fault.kind = FaultKind::kThrow;
  } else if (kind == "exit") {
    fault.kind = FaultKind::kExit;
  } else if (kind == "hang") {
    fault.kind = FaultKind::kHang;
  } else if (kind == "sigkill") {
    fault.kind = FaultKind::kSigkill;
  } else if (kind == "delay") {
    fault.kind = FaultKind::kDelay;
  } else {
    KVSAFE_CHECK(false, "KVSAFE_FAULT: `", part, "`: unknown fault `", kind, "` (throw, exit, hang, sigkill, delay)");
  }
  for (std::size_t i = 1; i < fields.size(); ++i) {
    const auto eq = fields[i].find('=');
    KVSAFE_CHECK(eq != std::string_view::npos, "KVSAFE_FAULT: `", part, "`: expected key=value, got `", fields[i], "`");
    const std::string_view key = fields[i].substr(0, eq);
    const std::string_view value = fields[i].substr(eq + 1);
    if (key == "rank") {
      fault.rank = static_cast<int>(parse_count(value, part));
    } else if (key == "ms" && fault.kind == FaultKind::kDelay) {
      fault.delay_ms = parse_count(value, part);
    } else if (key == "after" && fault.kind != FaultKind::kThrow && fault.kind != FaultKind::kDelay) {
      fault.after = parse_count(value, part);
    } else if (key == "shard" && fault.kind == FaultKind::kThrow) {
      fault.shard = parse_count(value, part);
      KVSAFE_CHECK(*fault.shard >= 1, "KVSAFE_FAULT: `", part, "`: shards count from 1");
    } else if (key == "kv" && fault.kind == FaultKind::kThrow) {
      KVSAFE_CHECK(!value.empty(), "KVSAFE_FAULT: `", part, "`: kv= needs a KV label");
      fault.kv_label = std::string(value);
    } else {
      KVSAFE_CHECK(false, "KVSAFE_FAULT: `", part, "`: unknown key `", key, "` for `", kind, "`");
    }
  }
  if (fault.kind == FaultKind::kThrow) {
    KVSAFE_CHECK(fault.shard.has_value() != fault.kv_label.has_value(), "KVSAFE_FAULT: `", part,
                 "`: throw needs exactly one of shard=N or kv=LABEL");
  } else if (fault.kind == FaultKind::kDelay) {
    KVSAFE_CHECK(fault.delay_ms > 0, "KVSAFE_FAULT: `", part, "`: delay needs ms=N");
  } else {
    KVSAFE_CHECK(fault.rank.has_value(), "KVSAFE_FAULT: `", part, "`: ", kind, " needs rank=R");
  }
  return fault;
}

}  // namespace

FaultPlan FaultPlan::parse(std::string_view text) {
  FaultPlan plan;
  if (text.empty()) return plan;
  for (const std::string_view part : split(text, ',')) {
    KVSAFE_CHECK(!part.empty(), "KVSAFE_FAULT: empty fault in `", text, "`");
    plan.faults_.push_back(parse_fault(part));
  }
  return plan;
}

std::optional<Fault> FaultPlan::before_shard(int rank, std::int64_t shard_number, std::string_view kv_label) const {
  for (const Fault& fault : faults_) {
    if (fault.kind == FaultKind::kDelay || (fault.rank && *fault.rank != rank)) continue;
    const bool hit = fault.kind == FaultKind::kThrow
                         ? (fault.shard ? *fault.shard == shard_number : *fault.kv_label == kv_label)
                         : shard_number == fault.after + 1;
    if (hit) return fault;
  }
  return std::nullopt;
}

std::int64_t FaultPlan::delay_ms(int rank) const {
  std::int64_t total = 0;
  for (const Fault& fault : faults_) {
    if (fault.kind == FaultKind::kDelay && (!fault.rank || *fault.rank == rank)) total += fault.delay_ms;
  }
  return total;
}

}  // namespace kvsafe::orchestrator
