// `kvsafe status DB`: experiments, cells by state, failures with their errors; with --summary,
// also the run summary (report/run_summary.h): refusal, flip and perplexity per KV label, and
// first-token divergence and KV MSE.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cluster/job_history.h"
#include "db/store.h"
#include "report/run_summary.h"

namespace kvsafe::cli {

void register_status(CLI::App& app, CommandContext& context) {
  auto db_path = std::make_shared<std::string>();
  auto summary = std::make_shared<bool>(false);
  auto options = std::make_shared<report::RunSummaryOptions>();
  auto* command =
      app.add_subcommand("status",
                         "Show a results database: each experiment's cells and shards by state (pending, running,\n"
                         "done, failed), prompts done, every failed cell with its error, and the SLURM jobs that\n"
                         "ran on it (state, exit, requeues, nodes). Read-only: safe while a run writes.");
  command->add_option("db", *db_path, "Results database")->required();
  command->add_flag("--summary", *summary,
                    "Also print the run summary: per model and benchmark, refusal and compliance rates,\n"
                    "the conditional flip rate vs full precision (Wilson 95% CIs, regime) and the perplexity\n"
                    "ratio, per KV quantizer; then mean first-token KL, changed first tokens and KV MSE");
  command
      ->add_option("--min-baseline-refusals", options->min_baseline_refusals,
                   "With --summary: a baseline that refused fewer harmful prompts leaves its flips undefined "
                   "(default 10)")
      ->check(CLI::NonNegativeNumber);
  command->callback([db_path, summary, options, &context] {
    auto store = db::Store::open(*db_path, {.read_only = true});
    std::string text = db::format_status_report(store->status_report());
    text += cluster::format_job_history(cluster::slurm_job_history(*db_path));
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (*summary) {
      std::fflush(stdout);
      std::cout << "\nSummary\n";
      report::write_run_summary(report::summarize_run(*db_path, *options), std::cout, *options);
      std::cout.flush();
    }
    context.exit_code = kExitOk;
  });
}

}  // namespace kvsafe::cli
