#pragma once
// Which copy of the CPU kernels runs: every vectorised CPU kernel (the engine's packed
// products, quantized-tile expansion, decode attention, elementwise ops and greedy
// selection; the KV codec's vector path) is compiled once per instruction set and picks its
// copy here, so a process runs one copy throughout and can say which.
//
// The default is the best copy this CPU runs. $KVSAFE_CPU_KERNELS (read by
// common/environment.cpp) forces one, so the AVX2 and baseline copies can be tested and
// measured on an AVX-512 machine too; tests switch copies with use_cpu_kernels().

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvsafe {

enum class CpuKernels {
  kGeneric,  // the baseline x86-64 target (SSE2, no FMA), or the compiler's default elsewhere
  kAvx2,     // AVX2 + FMA
  kAvx512,   // AVX-512F (+ FMA)
};

// "generic", "avx2", "avx512" (the names $KVSAFE_CPU_KERNELS takes).
std::string_view to_string(CpuKernels copy);

// The copy named `name`, or nullopt for an unknown name.
std::optional<CpuKernels> parse_cpu_kernels(std::string_view name);

// Whether this CPU runs `copy` (checked once with cpuid).
bool cpu_runs(CpuKernels copy);

// The copies this CPU runs, best first (always ends with kGeneric).
const std::vector<CpuKernels>& runnable_cpu_kernels();

// The copy every kernel runs now: the one use_cpu_kernels() chose, else $KVSAFE_CPU_KERNELS,
// else the best this CPU runs. Throws InputError, naming the variable and the copies this
// CPU runs, when $KVSAFE_CPU_KERNELS names an unknown copy or one this CPU cannot run; the
// engine calls it when a model loads, so that such an error comes before any work.
CpuKernels active_cpu_kernels();

// Tests and benchmarks: makes every kernel run `copy` (nullopt: back to the default above).
// Returns false, changing nothing, when this CPU cannot run it. Not for use while kernels
// run on other threads.
bool use_cpu_kernels(std::optional<CpuKernels> copy);

// One line for logs and `kvsafe --version`: "avx2 (CPU runs avx512, avx2, generic; forced by
// KVSAFE_CPU_KERNELS)"; never throws (a bad $KVSAFE_CPU_KERNELS is described, not raised).
std::string describe_cpu_kernels();

}  // namespace kvsafe
