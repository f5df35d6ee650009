// The kvsafe command. Parses the global flags, sets up logging, and hands over to the
// subcommand registered in cli/<name>.cpp. Every error reaches the user as one clear
// message on stderr and an exit code from cli/exit_codes.h; nothing aborts.

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "common/cpu_kernels.h"
#include "common/error.h"
#include "common/logging.h"

namespace {

std::string join_argv(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) line += ' ';
    line += argv[i];
  }
  return line;
}

int run_kvsafe(int argc, char** argv) {
  using namespace kvsafe::cli;
  CLI::App app{
      "kvsafe: does KV-cache quantization silently break an LLM's safety alignment?\n"
      "Runs grids of models x KV quantizers x safety benchmarks, stores every answer in SQLite,\n"
      "diagnoses failures (PCR) and regenerates the paper's tables.",
      "kvsafe"};
  app.require_subcommand(1);
  app.fallthrough();

  bool verbose = false;
  std::string log_format = "text";
  app.add_flag("-v,--verbose", verbose, "Log debug messages");
  app.add_option("--log-format", log_format, "Log line format on stderr: text, or json for cluster log collectors")
      ->check(CLI::IsMember({"text", "json"}));
  app.set_version_flag(
      "--version", [] { return version_text(); }, "Print version, git commit, compiler and libraries");

  CommandContext context;
  context.command_line = join_argv(argc, argv);
  register_run(app, context);
  register_submit(app, context);
  register_status(app, context);
  register_query(app, context);
  register_tables(app, context);
  register_report(app, context);
  register_diagnose(app, context);
  register_generate(app, context);
  register_plan(app, context);
  register_quantize(app, context);
  register_datasets(app, context);
  register_merge(app, context);
  register_tokenize(app, context);
  register_judge(app, context);

  // Logging must be configured before any subcommand callback runs.
  app.parse_complete_callback([&] {
    kvsafe::configure_logging(
        {.format = log_format == "json" ? kvsafe::LogFormat::kJson : kvsafe::LogFormat::kText, .verbose = verbose});
    context.environment = kvsafe::Environment::from_process();
    spdlog::debug("data dir: {} (from {}); model cache: {}; CPU kernels: {}", context.environment.data_dir.string(),
                  context.environment.data_dir_source, context.environment.model_cache_dir.string(),
                  kvsafe::describe_cpu_kernels());
    // A bad $KVSAFE_CPU_KERNELS stops every command here, with the copies this CPU runs.
    kvsafe::active_cpu_kernels();
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  return context.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_kvsafe(argc, argv);
  } catch (const kvsafe::Error& error) {
    fmt::print(stderr, "kvsafe: error: {}\n", error.what());
  } catch (const std::exception& error) {
    fmt::print(stderr, "kvsafe: unexpected error: {}\n", error.what());
  }
  return kvsafe::cli::kExitFailure;
}
