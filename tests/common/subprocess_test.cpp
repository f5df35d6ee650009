// run_process and find_on_path against real programs of the base system (sh, true, false).

#include <gtest/gtest.h>

#include <chrono>

#include "common/error.h"
#include "common/subprocess.h"

namespace kvsafe {
namespace {

TEST(Subprocess, CapturesOutputAndExitStatus) {
  const ProcessResult ok = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(ok.exit_code, 3);
  EXPECT_EQ(ok.output, "out\nerr\n");
  EXPECT_EQ(run_process({"true"}).exit_code, 0);
  EXPECT_EQ(run_process({"false"}).exit_code, 1);
}

TEST(Subprocess, ArgumentsAreNotReparsedByAShell) {
  // One argument with spaces, quotes, `$` and `;` arrives as one argument, unchanged.
  const ProcessResult r = run_process({"sh", "-c", "printf '%s|' \"$@\"", "sh", "a b", "'q' \"d\" $HOME; x"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "a b|'q' \"d\" $HOME; x|");
}

TEST(Subprocess, AProgramThatIsNotThereIs127WithTheReason) {
  const ProcessResult r = run_process({"kvsafe-no-such-program-here"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.output.find("kvsafe-no-such-program-here"), std::string::npos) << r.output;
  EXPECT_EQ(find_on_path("kvsafe-no-such-program-here"), "");
  EXPECT_NE(find_on_path("sh"), "");
  EXPECT_THROW(run_process({}), InputError);
}

TEST(Subprocess, StderrApartWhenAsked) {
  const ProcessResult r = run_process({"sh", "-c", "echo out; echo err >&2"}, {.timeout_s = 0, .merge_stderr = false});
  EXPECT_EQ(r.output, "out\n");
  EXPECT_EQ(r.error, "err\n");
}

TEST(Subprocess, ATimeoutKillsTheProgramAndWhatItStarted) {
  // The shell starts a sleeper that holds the output open: without the process group kill the
  // read would wait for it.
  const auto started = std::chrono::steady_clock::now();
  const ProcessResult r = run_process({"sh", "-c", "sleep 30 & sleep 30"}, {.timeout_s = 0.5, .merge_stderr = true});
  EXPECT_EQ(r.exit_code, 124) << r.output;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));  // a margin no machine misses
}

TEST(Subprocess, ASignalIs128PlusItsNumber) {
  EXPECT_EQ(run_process({"sh", "-c", "kill -TERM $$"}).exit_code, 128 + 15);
}

}  // namespace
}  // namespace kvsafe
