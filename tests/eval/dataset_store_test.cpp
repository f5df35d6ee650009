// verify and pull against real files: the manifest equals ../shared/datasets, a pull from a
// real HTTP server on 127.0.0.1 installs every file, a corrupted or missing file on the
// server fails with a checksum or HTTP error and leaves nothing behind, `--from` copies a
// mirror, and verify finds a modified file. Nothing here contacts the internet.

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "eval/dataset_manifest.h"
#include "eval/dataset_store.h"
#include "eval_test_util.h"

namespace kvsafe::eval {
namespace {

using testing::shared_datasets;

class DatasetStore : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::have_shared_datasets()) GTEST_SKIP() << "no " << shared_datasets();
  }
};

// Every file under a folder, relative path -> size; partial files show up here too.
std::map<std::string, std::uintmax_t> files_under(const std::filesystem::path& root) {
  std::map<std::string, std::uintmax_t> files;
  if (!std::filesystem::exists(root)) return files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) files[entry.path().lexically_relative(root).string()] = entry.file_size();
  }
  return files;
}

const PullFileResult& result_for(const PullReport& report, std::string_view path) {
  for (const PullFileResult& file : report.files) {
    if (file.entry->path == path) return file;
  }
  throw std::runtime_error("no result for " + std::string(path));
}

TEST_F(DatasetStore, ManifestEqualsTheSharedManifestFile) {
  std::ifstream in(shared_datasets() / "MANIFEST.sha256");
  std::map<std::string, std::string> listed;
  std::string sha, path;
  while (in >> sha >> path) listed[path.substr(2)] = sha;  // "./advbench/LICENSE"
  ASSERT_EQ(listed.size(), dataset_manifest().size());
  for (const ManifestEntry& entry : dataset_manifest()) {
    EXPECT_EQ(listed[std::string(entry.path)], entry.sha256) << entry.path;
    if (entry.kind == ManifestKind::kData || entry.kind == ManifestKind::kLicence) {
      // Every required file but the rebuilt wiki.test.raw has a pinned public URL.
      if (entry.path != "wikitext-2/wiki.test.raw") {
        EXPECT_TRUE(entry.url.starts_with("https://raw.githubusercontent.com/")) << entry.path;
      }
    } else if (entry.path.ends_with("SOURCE.txt") || entry.kind == ManifestKind::kDerived) {
      EXPECT_TRUE(entry.url.empty()) << entry.path;  // written or extracted when the data was collected
    }
  }
}

TEST_F(DatasetStore, VerifyTheSharedCopy) {
  const VerifyReport report = verify_datasets(shared_datasets());
  EXPECT_TRUE(report.passed());
  EXPECT_EQ(report.ok, static_cast<std::int64_t>(dataset_manifest().size()));
}

TEST_F(DatasetStore, VerifyFindsAModifiedAndAMissingFile) {
  testing::TempDir copy("verify");
  testing::copy_tree(shared_datasets(), copy.path() / "data");
  const std::filesystem::path data = copy.path() / "data";
  std::string bytes = testing::slurp(data / "xstest/xstest_prompts.csv");
  bytes[100] = static_cast<char>(bytes[100] ^ 0x20);  // same size, one byte changed
  testing::write_file(data / "xstest/xstest_prompts.csv", bytes);
  std::filesystem::remove(data / "strongreject/strongreject_dataset.csv");
  std::filesystem::remove(data / "advbench/SOURCE.txt");
  const VerifyReport report = verify_datasets(data);
  EXPECT_FALSE(report.passed());
  EXPECT_EQ(report.mismatched, 1);
  EXPECT_EQ(report.missing, 1);
  EXPECT_EQ(report.optional_missing, 1);
  for (const FileCheck& check : report.files) {
    if (check.entry->path == "xstest/xstest_prompts.csv") {
      EXPECT_EQ(check.state, FileState::kMismatch);
    }
  }
}

TEST_F(DatasetStore, PullFromALocalHttpServer) {
  testing::LocalHttpServer server(shared_datasets());
  ASSERT_NE(server.port(), 0) << "python3 -m http.server did not start";
  testing::TempDir cache("pull");
  const PullReport report = pull_datasets({.destination = cache.path(), .base_url = server.base_url()});
  for (const PullFileResult& file : report.files) EXPECT_TRUE(file.status.is_ok()) << file.status.message();
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.failed, 0);
  const VerifyReport verify = verify_datasets(cache.path());
  EXPECT_TRUE(verify.passed()) << verify.missing << " missing, " << verify.mismatched << " mismatched";
  EXPECT_EQ(verify.mismatched, 0);
  // Only required files were fetched; provenance notes and derived lists were not.
  EXPECT_EQ(report.installed + report.no_source, static_cast<std::int64_t>(dataset_manifest().size()));
  EXPECT_EQ(report.installed, verify.ok);
  // A second pull finds everything in place and fetches nothing.
  const PullReport again = pull_datasets({.destination = cache.path(), .base_url = server.base_url()});
  EXPECT_EQ(again.installed, 0);
  EXPECT_EQ(again.already_present, report.installed);
}

TEST_F(DatasetStore, CorruptedAndMissingFilesOnTheServerInstallNothing) {
  testing::TempDir served("served");
  testing::copy_tree(shared_datasets(), served.path() / "root");
  const std::filesystem::path root = served.path() / "root";
  std::string bytes = testing::slurp(root / "advbench/harmful_behaviors.csv");
  bytes[1000] = static_cast<char>(bytes[1000] ^ 0x01);
  testing::write_file(root / "advbench/harmful_behaviors.csv", bytes);
  std::filesystem::remove(root / "jailbreakbench/behaviors.csv");
  testing::LocalHttpServer server(root);
  ASSERT_NE(server.port(), 0);

  testing::TempDir cache("pull_bad");
  const PullReport report = pull_datasets({.destination = cache.path(), .base_url = server.base_url()});
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.failed, 2);
  const PullFileResult& corrupt = result_for(report, "advbench/harmful_behaviors.csv");
  EXPECT_EQ(corrupt.outcome, PullOutcome::kFailed);
  EXPECT_NE(corrupt.status.message().find("advbench/harmful_behaviors.csv: checksum mismatch: expected sha256 "
                                          "6cd1a5c63c07610d7eb67307772ee5606017ee950b5770ab288a2c487489d3e1"),
            std::string::npos)
      << corrupt.status.message();
  const PullFileResult& missing = result_for(report, "jailbreakbench/behaviors.csv");
  EXPECT_EQ(missing.outcome, PullOutcome::kFailed);
  EXPECT_NE(missing.status.message().find("HTTP 404"), std::string::npos) << missing.status.message();
  EXPECT_NE(missing.status.message().find("jailbreakbench/behaviors.csv"), std::string::npos);

  // Nothing of the two failed files is left, not even a partial download.
  const auto installed = files_under(cache.path());
  for (const auto& [path, size] : installed) {
    EXPECT_EQ(path.find(".partial"), std::string::npos) << path;
    EXPECT_NE(path, "advbench/harmful_behaviors.csv");
    EXPECT_NE(path, "jailbreakbench/behaviors.csv");
  }
  // The others were installed.
  EXPECT_EQ(result_for(report, "xstest/xstest_prompts.csv").outcome, PullOutcome::kInstalled);
}

TEST_F(DatasetStore, ConnectionRefusedIsAnError) {
  // A port nobody listens on: bind one, note it, let the server go away.
  int port = 0;
  {
    testing::LocalHttpServer server(shared_datasets());
    port = server.port();
  }
  ASSERT_NE(port, 0);
  testing::TempDir cache("refused");
  const PullReport report =
      pull_datasets({.destination = cache.path(), .base_url = "http://127.0.0.1:" + std::to_string(port)});
  EXPECT_FALSE(report.ok());
  EXPECT_NE(report.files.front().status.message().find("download of http://127.0.0.1"), std::string::npos)
      << report.files.front().status.message();
  EXPECT_TRUE(files_under(cache.path()).empty());
}

TEST_F(DatasetStore, PullFromAnOfflineMirror) {
  testing::TempDir cache("mirror");
  const PullReport report =
      pull_datasets({.destination = cache.path(), .from_dir = shared_datasets(), .include_optional = true});
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.installed, static_cast<std::int64_t>(dataset_manifest().size()));
  const VerifyReport verify = verify_datasets(cache.path());
  EXPECT_TRUE(verify.passed());
  EXPECT_EQ(verify.ok, static_cast<std::int64_t>(dataset_manifest().size()));

  // A corrupted mirror file is refused the same way.
  testing::TempDir bad("mirror_bad");
  testing::copy_tree(shared_datasets(), bad.path() / "m");
  std::string bytes = testing::slurp(bad.path() / "m/xstest/xstest_prompts.csv");
  bytes.pop_back();
  testing::write_file(bad.path() / "m/xstest/xstest_prompts.csv", bytes);
  testing::TempDir cache2("mirror2");
  const PullReport bad_report = pull_datasets({.destination = cache2.path(), .from_dir = bad.path() / "m"});
  EXPECT_EQ(bad_report.failed, 1);
  EXPECT_NE(result_for(bad_report, "xstest/xstest_prompts.csv").status.message().find("expected 38719 bytes"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(cache2.path() / "xstest/xstest_prompts.csv"));
}

}  // namespace
}  // namespace kvsafe::eval
