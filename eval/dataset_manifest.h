#pragma once
// The pinned dataset manifest compiled into kvsafe: every file of the data directory with
// its sha256, size and, where one exists, a public URL at a pinned commit. `kvsafe datasets
// verify` checks files against it; `kvsafe datasets pull` downloads by it and installs a
// file only when its sha256 matches.

#include <cstdint>
#include <span>
#include <string_view>

namespace kvsafe::eval {

enum class ManifestKind {
  kData,        // prompt sets and corpora the registry reads
  kLicence,     // the licence file that travels with a data set
  kProvenance,  // SOURCE.txt / README notes written when the data was collected (no public URL)
  kDerived,     // lists extracted from source code (refusal markers, judge prompts; no single-file URL)
};

struct ManifestEntry {
  std::string_view path{};    // relative to the data directory, '/'-separated
  std::string_view sha256{};  // lower-case hex
  std::uint64_t size = 0;     // bytes
  ManifestKind kind = ManifestKind::kData;
  std::string_view url{};  // canonical download URL at a pinned commit; empty when there is none
};

// All entries, in ../shared/datasets/MANIFEST.sha256 order (by folder, then file name).
std::span<const ManifestEntry> dataset_manifest();
// The entry for `path`, or nullptr.
const ManifestEntry* find_manifest_entry(std::string_view path);
// "data", "licence", "provenance", "derived".
std::string_view to_string(ManifestKind kind);
// Whether verify fails when the file is absent: data and licence files must be there;
// provenance notes and derived lists only come with a copy of ../shared/datasets.
bool is_required(ManifestKind kind);

}  // namespace kvsafe::eval
