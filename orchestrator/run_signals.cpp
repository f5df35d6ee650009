#include "orchestrator/run_signals.h"

#include <csignal>

namespace kvsafe::orchestrator {
namespace {

std::atomic<int> g_count{0};
std::atomic<int> g_last{0};
constexpr int kSignals[] = {SIGTERM, SIGINT, SIGUSR1};
struct sigaction g_previous[3];

extern "C" void on_stop_signal(int number) {
  // NOTE: only lock-free atomics here: anything else is not async-signal-safe.
  g_last.store(number);
  g_count.fetch_add(1);
}

}  // namespace

RunSignals::RunSignals() {
  g_count = 0;
  g_last = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &action, &g_previous[i]);
}

RunSignals::~RunSignals() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_previous[i], nullptr);
}

int RunSignals::count() {
  return g_count.load();
}
int RunSignals::last() {
  return g_last.load();
}
const std::atomic<int>* RunSignals::counter() {
  return &g_count;
}

void ignore_stop_signals() {
  for (const int number : kSignals) std::signal(number, SIG_IGN);
}

}  // namespace kvsafe::orchestrator
