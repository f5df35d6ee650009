#pragma once
// The options `kvsafe tables` and `kvsafe report` share: whose verdicts count (`--judge`) and
// the baseline-refusal threshold below which a flip is undefined (`--min-baseline-refusals`).

#include <cstdint>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace kvsafe::cli {

struct VerdictFlags {
  std::string judge;                        // "" = the runs' own verdicts, refused when they mix
  std::int64_t min_baseline_refusals = 10;  // fewer refusals of a baseline: its flips are undefined
};

void add_verdict_options(CLI::App* command, VerdictFlags& flags);

// report::choose_judge for `command` on `db`: the judge in `judge`, or the exit code after
// printing why on stderr (usage for a judge the database does not have, failure for a mix).
std::optional<int> choose_judge_or_exit(const std::string& command, const std::string& db, const VerdictFlags& flags,
                                        std::optional<std::string>& judge);

}  // namespace kvsafe::cli
