// `kvsafe datasets list|verify|pull`: the benchmark registry and the pinned dataset
// manifest (eval/benchmark_registry.h, eval/dataset_store.h). list shows what each
// benchmark loads and whether its files are here; verify checks every file's sha256;
// pull downloads the files from their pinned public URLs (or copies them --from an offline
// mirror) into the cache, installing a file only when its sha256 matches.

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "eval/benchmark_registry.h"
#include "eval/dataset_store.h"

namespace kvsafe::cli {
namespace {

struct DatasetsFlags {
  std::string action;
  std::string from;      // pull: offline mirror folder
  std::string base_url;  // pull: download <base-url>/<path> instead of each file's pinned URL
  std::string to;        // pull: destination folder
};

std::string_view format_name(eval::BenchmarkFormat format) {
  switch (format) {
    case eval::BenchmarkFormat::kLines:
      return "lines";
    case eval::BenchmarkFormat::kCsv:
      return "csv";
    case eval::BenchmarkFormat::kJson:
      return "json";
    case eval::BenchmarkFormat::kIfevalJsonLines:
      return "jsonl";
    case eval::BenchmarkFormat::kText:
      return "text";
    case eval::BenchmarkFormat::kConversations:
      return "jsonl";
  }
  return "?";
}

int run_list(const CommandContext& context) {
  const std::filesystem::path& data_dir = context.environment.data_dir;
  fmt::print("data directory: {} (from {})\n\n", data_dir.string(), context.environment.data_dir_source);
  fmt::print("{:<15} {:>7} {:>7} {:>7}  {:<6} {:<9} {}\n", "name", "prompts", "harmful", "benign", "format", "files",
             "licence");
  for (const eval::BenchmarkInfo& info : eval::benchmark_table()) {
    std::string prompts = "-", harmful = "-", benign = "-", state = "missing";
    if (info.format == eval::BenchmarkFormat::kConversations) {
      state = "your file";
    } else if (info.format == eval::BenchmarkFormat::kText) {
      std::error_code error;
      state = std::filesystem::is_regular_file(data_dir / info.files.front(), error) ? "present" : "missing";
    } else {
      eval::Benchmark benchmark;
      if (const Status status = eval::load_benchmark(info.name, data_dir, {}, &benchmark); status.is_ok()) {
        state = "present";
        prompts = std::to_string(benchmark.prompts.size());
        harmful = std::to_string(benchmark.harmful_count());
        benign = std::to_string(benchmark.benign_count());
      }
    }
    fmt::print("{:<15} {:>7} {:>7} {:>7}  {:<6} {:<9} {}\n", info.name, prompts, harmful, benign,
               format_name(info.format), state, info.licence);
    for (const std::string_view file : info.files) fmt::print("{:<15}   {}\n", "", file);
  }
  fmt::print("\ncalibration lists its train split; val and test are loaded with split: val|test.\n");
  return kExitOk;
}

int run_verify(const CommandContext& context) {
  const std::filesystem::path& data_dir = context.environment.data_dir;
  const eval::VerifyReport report = eval::verify_datasets(data_dir);
  for (const eval::FileCheck& check : report.files) {
    switch (check.state) {
      case eval::FileState::kOk:
        break;
      case eval::FileState::kMissing:
        fmt::print("MISSING   {} ({})\n", check.entry->path, eval::to_string(check.entry->kind));
        break;
      case eval::FileState::kOptionalMissing:
        fmt::print("absent    {} ({}, optional)\n", check.entry->path, eval::to_string(check.entry->kind));
        break;
      case eval::FileState::kMismatch:
        fmt::print("MISMATCH  {}: expected sha256 {} ({} bytes), found {} ({} bytes)\n", check.entry->path,
                   check.entry->sha256, check.entry->size, check.actual_sha256, check.actual_size);
        break;
    }
  }
  fmt::print("{}: {} ok, {} mismatched, {} missing, {} optional absent ({} files in the manifest)\n", data_dir.string(),
             report.ok, report.mismatched, report.missing, report.optional_missing, report.files.size());
  if (report.passed()) return kExitOk;
  fmt::print(stderr, "kvsafe: error: datasets verify failed for {}{}\n", data_dir.string(),
             report.missing > 0 ? " (run `kvsafe datasets pull` to fetch missing files)" : "");
  return kExitFailure;
}

// Where pull writes by default: $KVSAFE_DATA or the cache, never the read-only ../shared copy.
std::filesystem::path default_pull_destination(const CommandContext& context) {
  if (context.environment.data_dir_source != "../shared/datasets") return context.environment.data_dir;
  return context.environment.dataset_cache_dir;
}

int run_pull(const DatasetsFlags& flags, const CommandContext& context) {
  const eval::PullOptions options{
      .destination = flags.to.empty() ? default_pull_destination(context) : std::filesystem::path(flags.to),
      .from_dir = flags.from,
      .base_url = flags.base_url,
      .include_optional = !flags.from.empty(),
  };
  const eval::PullReport report = eval::pull_datasets(options);
  for (const eval::PullFileResult& file : report.files) {
    switch (file.outcome) {
      case eval::PullOutcome::kInstalled:
        fmt::print("installed {}\n", file.entry->path);
        break;
      case eval::PullOutcome::kAlreadyPresent:
        break;
      case eval::PullOutcome::kNoSource:
        if (eval::is_required(file.entry->kind)) {
          fmt::print("skipped   {}: no public single-file URL; copy it with `kvsafe datasets pull --from DIR`\n",
                     file.entry->path);
        }
        break;
      case eval::PullOutcome::kFailed:
        fmt::print(stderr, "FAILED    {}\n", file.status.message());
        break;
    }
  }
  fmt::print("{}: {} installed, {} already present, {} failed, {} skipped\n", options.destination.string(),
             report.installed, report.already_present, report.failed, report.no_source);
  if (report.ok()) return kExitOk;
  fmt::print(stderr, "kvsafe: error: datasets pull: {} file(s) failed; nothing was installed for them\n",
             report.failed);
  return kExitFailure;
}

}  // namespace

void register_datasets(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<DatasetsFlags>();
  auto* command =
      app.add_subcommand("datasets",
                         "Benchmark prompt sets in $KVSAFE_DATA: list them, verify their checksums, or pull them\n"
                         "from their public sources (or --from an offline mirror) into the cache.");
  command->add_option("action", flags->action, "list, verify or pull")
      ->required()
      ->check(CLI::IsMember({"list", "verify", "pull"}));
  auto* from =
      command->add_option("--from", flags->from, "pull: copy from this offline mirror folder instead of downloading");
  command
      ->add_option("--base-url", flags->base_url,
                   "pull: download <URL>/<relative path> from a mirror server instead of each file's pinned URL")
      ->excludes(from);
  command->add_option("--to", flags->to,
                      "pull: destination folder (default: $KVSAFE_DATA, else ~/.cache/kvsafe/datasets)");
  command->callback([flags, &context] {
    if (flags->action == "list") {
      context.exit_code = run_list(context);
    } else if (flags->action == "verify") {
      context.exit_code = run_verify(context);
    } else {
      context.exit_code = run_pull(*flags, context);
    }
  });
}

}  // namespace kvsafe::cli
