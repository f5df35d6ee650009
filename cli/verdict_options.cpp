#include "cli/verdict_options.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/exit_codes.h"
#include "common/error.h"
#include "report/database_tables.h"

namespace kvsafe::cli {

void add_verdict_options(CLI::App* command, VerdictFlags& flags) {
  command->add_option(
      "--judge", flags.judge,
      "Count this judge's verdicts (a label `kvsafe judge --list` shows); needed when runs mixed judges");
  command
      ->add_option("--min-baseline-refusals", flags.min_baseline_refusals,
                   "A baseline that refused fewer harmful prompts leaves its flips undefined (default 10)")
      ->check(CLI::NonNegativeNumber);
}

std::optional<int> choose_judge_or_exit(const std::string& command, const std::string& db, const VerdictFlags& flags,
                                        std::optional<std::string>& judge) {
  try {
    judge = report::choose_judge(db, flags.judge);
  } catch (const InputError& error) {
    fmt::print(stderr, "kvsafe {}: {}\n", command, error.what());
    return flags.judge.empty() ? kExitFailure : kExitUsage;
  }
  return std::nullopt;
}

}  // namespace kvsafe::cli
