#include "eval/dataset_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <system_error>

#include "common/error.h"
#include "common/sha256.h"
#include "eval/http_download.h"

namespace kvsafe::eval {
namespace {

// A temporary name beside the final one: same folder, so the rename is atomic; unique per
// process and call, so two pulls never write the same partial file.
std::filesystem::path partial_path(const std::filesystem::path& final_path) {
  static std::atomic<std::uint64_t> counter{0};
  return final_path.parent_path() /
         fmt::format(".{}.partial-{}-{}", final_path.filename().string(), ::getpid(), counter.fetch_add(1));
}

bool already_installed(const std::filesystem::path& path, const ManifestEntry& entry) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return false;
  return check_against_manifest(path, entry).is_ok();
}

// Fetches one entry into a partial file, checks it and renames it into place.
Status install(const ManifestEntry& entry, const PullOptions& options, const std::string& url) {
  const std::filesystem::path final_path = options.destination / entry.path;
  std::error_code error;
  std::filesystem::create_directories(final_path.parent_path(), error);
  if (error)
    return Status::io_error(fmt::format("cannot create {}: {}", final_path.parent_path().string(), error.message()));
  const std::filesystem::path partial = partial_path(final_path);

  Status status;
  if (!options.from_dir.empty()) {
    const std::filesystem::path source = options.from_dir / entry.path;
    std::filesystem::copy_file(source, partial, std::filesystem::copy_options::overwrite_existing, error);
    if (error) status = Status::io_error(fmt::format("cannot copy {}: {}", source.string(), error.message()));
  } else {
    status = http_download(url, partial, {.timeout_seconds = options.timeout_seconds});
  }
  if (status.is_ok()) status = check_against_manifest(partial, entry);
  if (status.is_ok()) {
    std::filesystem::rename(partial, final_path, error);
    if (error)
      status = Status::io_error(fmt::format("cannot move {} into place: {}", final_path.string(), error.message()));
  }
  if (!status.is_ok()) std::filesystem::remove(partial, error);
  return status;
}

}  // namespace

Status check_against_manifest(const std::filesystem::path& candidate, const ManifestEntry& entry) {
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(candidate, error);
  if (error)
    return Status::io_error(fmt::format("{}: cannot read {}: {}", entry.path, candidate.string(), error.message()));
  if (size != entry.size) {
    return Status::io_error(fmt::format("{}: checksum mismatch: expected {} bytes with sha256 {}, got {} bytes",
                                        entry.path, entry.size, entry.sha256, size));
  }
  std::string actual;
  try {
    actual = sha256_file_hex(candidate);
  } catch (const InputError& read_error) {
    return Status::io_error(fmt::format("{}: {}", entry.path, read_error.what()));
  }
  if (actual != entry.sha256) {
    return Status::io_error(
        fmt::format("{}: checksum mismatch: expected sha256 {}, got {}", entry.path, entry.sha256, actual));
  }
  return Status::ok();
}

VerifyReport verify_datasets(const std::filesystem::path& data_dir) {
  VerifyReport report;
  for (const ManifestEntry& entry : dataset_manifest()) {
    FileCheck check{.entry = &entry};
    const std::filesystem::path path = data_dir / entry.path;
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error)) {
      check.state = is_required(entry.kind) ? FileState::kMissing : FileState::kOptionalMissing;
    } else {
      check.actual_size = std::filesystem::file_size(path, error);
      try {
        check.actual_sha256 = sha256_file_hex(path);
      } catch (const InputError&) {
        check.actual_sha256 = "(unreadable)";
      }
      check.state = (check.actual_sha256 == entry.sha256 && check.actual_size == entry.size) ? FileState::kOk
                                                                                             : FileState::kMismatch;
    }
    switch (check.state) {
      case FileState::kOk:
        ++report.ok;
        break;
      case FileState::kMissing:
        ++report.missing;
        break;
      case FileState::kOptionalMissing:
        ++report.optional_missing;
        break;
      case FileState::kMismatch:
        ++report.mismatched;
        break;
    }
    report.files.push_back(std::move(check));
  }
  return report;
}

PullReport pull_datasets(const PullOptions& options) {
  KVSAFE_CHECK(!options.destination.empty(), "datasets pull: no destination folder");
  KVSAFE_CHECK(options.from_dir.empty() || options.base_url.empty(),
               "datasets pull: --from and a base URL exclude each other");
  if (!options.from_dir.empty()) {
    std::error_code error;
    KVSAFE_CHECK(std::filesystem::is_directory(options.from_dir, error), "datasets pull --from ",
                 options.from_dir.string(), ": not a folder");
  }
  PullReport report;
  for (const ManifestEntry& entry : dataset_manifest()) {
    PullFileResult result{.entry = &entry};
    const bool mirrored = !options.from_dir.empty() || !options.base_url.empty();
    std::string url;
    if (!options.base_url.empty()) {
      url = options.base_url;
      if (url.back() != '/') url += '/';
      url += entry.path;
    } else if (options.from_dir.empty()) {
      url = std::string(entry.url);
    }
    const bool optional = !is_required(entry.kind);
    if ((optional && !options.include_optional) || (!mirrored && url.empty()) ||
        (!options.from_dir.empty() && optional && !std::filesystem::exists(options.from_dir / entry.path))) {
      result.outcome = PullOutcome::kNoSource;
      ++report.no_source;
    } else if (already_installed(options.destination / entry.path, entry)) {
      result.outcome = PullOutcome::kAlreadyPresent;
      ++report.already_present;
    } else {
      spdlog::info("datasets pull: {} <- {}", entry.path, url.empty() ? (options.from_dir / entry.path).string() : url);
      result.status = install(entry, options, url);
      result.outcome = result.status.is_ok() ? PullOutcome::kInstalled : PullOutcome::kFailed;
      ++(result.status.is_ok() ? report.installed : report.failed);
    }
    report.files.push_back(std::move(result));
  }
  return report;
}

}  // namespace kvsafe::eval
