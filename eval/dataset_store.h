#pragma once
// The dataset commands' logic: verify a data directory against the pinned manifest, and
// pull the files into a cache folder, by download or from an offline mirror. A file is
// installed only after its sha256 and size match the manifest, by an atomic rename in its
// destination folder: an interrupted, corrupted or failed transfer leaves nothing behind.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"
#include "eval/dataset_manifest.h"

namespace kvsafe::eval {

enum class FileState {
  kOk,               // present, sha256 matches
  kMissing,          // absent, and the file is required (data or licence)
  kOptionalMissing,  // absent, a provenance note or derived list (only a mirror of ../shared has those)
  kMismatch,         // present with another sha256 or size
};

struct FileCheck {
  const ManifestEntry* entry = nullptr;
  FileState state = FileState::kOk;
  std::string actual_sha256{};    // when present
  std::uint64_t actual_size = 0;  // when present
};

struct VerifyReport {
  std::vector<FileCheck> files{};  // manifest order
  std::int64_t ok = 0;
  std::int64_t missing = 0;  // required files absent
  std::int64_t optional_missing = 0;
  std::int64_t mismatched = 0;
  // True when no file is mismatched and no required file is missing.
  bool passed() const { return missing == 0 && mismatched == 0; }
};

// Hashes every manifest file present under `data_dir`. Never throws for a missing or
// unreadable file: that is reported as missing / mismatched.
VerifyReport verify_datasets(const std::filesystem::path& data_dir);

struct PullOptions {
  std::filesystem::path destination{};  // folder to fill (the cache); created when absent
  std::filesystem::path from_dir{};     // non-empty: copy from this offline mirror (laid out as the data dir)
  std::string base_url{};               // non-empty: download <base_url>/<relative path> instead of each file's URL
  bool include_optional = false;        // also copy provenance/derived files (only possible with from_dir or base_url)
  long timeout_seconds = 600;           // per download
};

enum class PullOutcome {
  kInstalled,       // fetched, checked and moved into place
  kAlreadyPresent,  // already there with the right sha256: not fetched again
  kNoSource,        // no URL (and no mirror) for this file: skipped
  kFailed,          // download/copy error or checksum mismatch; nothing was installed
};

struct PullFileResult {
  const ManifestEntry* entry = nullptr;
  PullOutcome outcome = PullOutcome::kFailed;
  Status status{};  // why it failed; says which file and what was expected
};

struct PullReport {
  std::vector<PullFileResult> files{};
  std::int64_t installed = 0;
  std::int64_t already_present = 0;
  std::int64_t no_source = 0;
  std::int64_t failed = 0;
  bool ok() const { return failed == 0; }
};

// Pulls every manifest file that has a source (a URL, or the mirror) into
// options.destination. A file that fails does not stop the others; see the report.
PullReport pull_datasets(const PullOptions& options);

// Checks `candidate` against `entry` (size, then sha256); io_error naming `entry.path`,
// the expected and the actual values on a mismatch.
Status check_against_manifest(const std::filesystem::path& candidate, const ManifestEntry& entry);

}  // namespace kvsafe::eval
