#include "orchestrator/run_progress.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>

#include "common/logging.h"

namespace kvsafe::orchestrator {
namespace {

std::string duration_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace

std::string format_progress(const ProgressSnapshot& snapshot) {
  const double rate = snapshot.elapsed_s > 0 ? static_cast<double>(snapshot.tokens) / snapshot.elapsed_s : 0;
  std::string line = fmt::format("shards {}/{} | prompts {}/{} | {:.0f} tok/s", snapshot.shards_done,
                                 snapshot.shards_total, snapshot.prompts_done, snapshot.prompts_total, rate);
  for (const auto& [model, state] : snapshot.models) {
    if (state.running == 0 && state.shards_left == 0) continue;
    line += fmt::format(" | {}: {} running, {} queued", model, state.running, state.shards_left);
  }
  if (snapshot.failed_cells > 0) line += fmt::format(" | {} cell(s) failed", snapshot.failed_cells);
  if (snapshot.stopping) {
    line += " | stopping: draining shards in flight";
  } else if (snapshot.prompts_done > 0 && snapshot.prompts_total > snapshot.prompts_done) {
    const double eta = snapshot.elapsed_s / static_cast<double>(snapshot.prompts_done) *
                       static_cast<double>(snapshot.prompts_total - snapshot.prompts_done);
    line += " | ETA " + duration_text(eta);
  }
  return line;
}

ProgressReporter::ProgressReporter(bool live, std::chrono::milliseconds log_every) : live_(live), every_(log_every) {}

void ProgressReporter::tick(const ProgressSnapshot& snapshot) {
  const auto now = std::chrono::steady_clock::now();
  const auto every = live_ ? std::chrono::milliseconds(500) : every_;
  if (shown_ && now - last_ < every) return;
  last_ = now;
  shown_ = true;
  if (live_) {
    show_live_line(format_progress(snapshot));  // log lines go above it (common/logging.h)
  } else {
    spdlog::info("progress: {}", format_progress(snapshot));
  }
}

void ProgressReporter::finish(const ProgressSnapshot& snapshot) {
  if (live_) clear_live_line();
  spdlog::info("progress: {}", format_progress(snapshot));
}

}  // namespace kvsafe::orchestrator
