#pragma once
// Helpers of the `kvsafe diagnose` integration tests (diagnose_test.cpp, diagnose_mpi_test.cpp,
// refusal_direction_test.cpp): variants of the fixture grids written into a test's folder, and
// the stored diagnosis as `kvsafe diagnose DB --show` prints it.

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include "tests/integration/run_harness.h"

namespace kvsafe::testing {

// fixtures/stories_diagnose.yaml with its relative paths made absolute and `tasks_line`
// replacing its tasks line, written to dir/name.
inline std::filesystem::path diagnose_grid_variant(const std::filesystem::path& dir, const std::string& name,
                                                   const std::string& tasks_line) {
  std::string text = slurp(run_fixture("stories_diagnose.yaml"));
  const auto replace = [&text](const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
  };
  replace("../../../../shared", std::string(KVSAFE_SOURCE_DIR) + "/../shared");
  replace("markers_file: stories_diagnose_markers.txt",
          "markers_file: " + run_fixture("stories_diagnose_markers.txt").string());
  replace("  tasks: [layer_ablation, pcr, mitigation]\n", tasks_line);
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path;
}

// fixtures/stories_refusal_direction.yaml with its relative paths made absolute, written to
// dir/name.
inline std::filesystem::path refusal_direction_grid(const std::filesystem::path& dir, const std::string& name) {
  std::string text = slurp(run_fixture("stories_refusal_direction.yaml"));
  for (const auto& [from, to] :
       {std::pair<std::string, std::string>{"../../../../shared", std::string(KVSAFE_SOURCE_DIR) + "/../shared"},
        {"markers_file: stories_diagnose_markers.txt",
         "markers_file: " + run_fixture("stories_diagnose_markers.txt").string()}}) {
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
  }
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path;
}

// What `kvsafe diagnose DB --show` prints (its stdout, through a file in `dir`).
inline std::string shown_diagnosis(const std::filesystem::path& db, const std::filesystem::path& dir) {
  const auto out = dir / "show.txt";
  const auto shown =
      run_to_end("sh -c '" + kvsafe_binary() + " diagnose " + db.string() + " --show > " + out.string() + "'", "",
                 dir / "show_err.txt");
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  return slurp(out);
}

}  // namespace kvsafe::testing
