// common/cpu_kernels.h: the process-wide choice of CPU kernel copies.

#include "common/cpu_kernels.h"

#include <atomic>

#include "common/environment.h"
#include "common/error.h"

namespace kvsafe {
namespace {

// -1: no copy chosen by use_cpu_kernels().
std::atomic<int> g_forced{-1};

bool cpu_supports(CpuKernels copy) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  switch (copy) {
    case CpuKernels::kGeneric:
      return true;
    // Every feature any kernel of the copy is compiled for: the engine's lane sets
    // (engine/lanes16.h: avx512f or avx2, with fma) and the KV codec's paths
    // (kernels/group_codec_cpu_avx*.cpp: avx512bw/vl, bmi2, f16c). One answer for both, so a
    // copy this reports runnable runs all of its kernels; every AVX2 CPU has f16c and every
    // AVX-512 server or desktop CPU bw/vl/bmi2.
    case CpuKernels::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case CpuKernels::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c") &&
             __builtin_cpu_supports("fma");
  }
  return false;
#else
  return copy == CpuKernels::kGeneric;
#endif
}

std::string runnable_list() {
  std::string out;
  for (const CpuKernels copy : runnable_cpu_kernels()) {
    if (!out.empty()) out += ", ";
    out += to_string(copy);
  }
  return out;
}

// The copy $KVSAFE_CPU_KERNELS asks for (checked once), or nullopt when it is unset.
std::optional<CpuKernels> from_environment() {
  static const std::optional<CpuKernels> chosen = []() -> std::optional<CpuKernels> {
    const std::string value = Environment::cpu_kernels_from_process();
    if (value.empty()) return std::nullopt;
    const std::optional<CpuKernels> copy = parse_cpu_kernels(value);
    KVSAFE_CHECK(copy.has_value(), "KVSAFE_CPU_KERNELS=", value,
                 ": not a copy of the CPU kernels (avx512, avx2 or generic); this CPU runs ", runnable_list());
    KVSAFE_CHECK(cpu_runs(*copy), "KVSAFE_CPU_KERNELS=", value, ": this CPU cannot run the ", value,
                 " kernels; it runs ", runnable_list());
    return copy;
  }();
  return chosen;
}

}  // namespace

std::string_view to_string(CpuKernels copy) {
  switch (copy) {
    case CpuKernels::kGeneric:
      return "generic";
    case CpuKernels::kAvx2:
      return "avx2";
    case CpuKernels::kAvx512:
      return "avx512";
  }
  return "unknown";
}

std::optional<CpuKernels> parse_cpu_kernels(std::string_view name) {
  for (const CpuKernels copy : {CpuKernels::kGeneric, CpuKernels::kAvx2, CpuKernels::kAvx512}) {
    if (name == to_string(copy)) return copy;
  }
  return std::nullopt;
}

bool cpu_runs(CpuKernels copy) {
  static const bool runs[3] = {cpu_supports(CpuKernels::kGeneric), cpu_supports(CpuKernels::kAvx2),
                               cpu_supports(CpuKernels::kAvx512)};
  return runs[static_cast<int>(copy)];
}

const std::vector<CpuKernels>& runnable_cpu_kernels() {
  static const std::vector<CpuKernels> copies = [] {
    std::vector<CpuKernels> out;
    for (const CpuKernels copy : {CpuKernels::kAvx512, CpuKernels::kAvx2, CpuKernels::kGeneric}) {
      if (cpu_runs(copy)) out.push_back(copy);
    }
    return out;
  }();
  return copies;
}

CpuKernels active_cpu_kernels() {
  const int forced = g_forced.load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<CpuKernels>(forced);
  if (const std::optional<CpuKernels> copy = from_environment()) return *copy;
  return runnable_cpu_kernels().front();
}

bool use_cpu_kernels(std::optional<CpuKernels> copy) {
  if (copy.has_value() && !cpu_runs(*copy)) return false;
  g_forced.store(copy.has_value() ? static_cast<int>(*copy) : -1, std::memory_order_relaxed);
  return true;
}

std::string describe_cpu_kernels() {
  CpuKernels active{};
  try {
    active = active_cpu_kernels();
  } catch (const InputError& e) {
    return std::string("none (") + e.what() + ")";
  }
  std::string why;
  if (g_forced.load(std::memory_order_relaxed) >= 0) {
    why = "; chosen by the caller";
  } else if (from_environment().has_value()) {
    why = "; forced by KVSAFE_CPU_KERNELS";
  }
  return std::string(to_string(active)) + " (CPU runs " + runnable_list() + why + ")";
}

}  // namespace kvsafe
