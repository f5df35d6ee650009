// Engine throughput (Google Benchmark): SmolLM2-135M prefill and decode tokens/s at batch 1,
// 8, 32, 64, with the weights as the engine keeps them by default (the Q4_1 / Q8_0 matrices
// quantized, engine/quantized_panels.h) and expanded to fp32 at load (fp32:1), beside what
// this machine can do: fp32 matmul GFLOP/s (-> the roofline, 2 x params FLOP per token) and
// copy bandwidth (-> the batch-1 bound of streaming the weights, as held, once per token). Counters: tokens/s, the
// roofline it is compared with (the matmul rate measured again just before each benchmark), and its
// fraction of each bound. Also prints which BLAS libtorch loaded (reference BLAS is ~35x slower than OpenBLAS here),
// OpenBLAS's kernel set and the peak RSS. Run it alone: OMP_WAIT_POLICY=passive (what scripts/test exports for a busy
// machine) costs batch-32 decode about 28% on a quiet one (engine/README.md). The roofline's
// matmul rate is the faster of OpenBLAS (its kernel set follows OPENBLAS_CORETYPE,
// scripts/cpu-env) and the engine's own packed kernels; report which ones a figure was taken
// with.
// Numbers go into issue notes as ratios; never asserted.
//
//   build/bench/engine_bench [--benchmark_filter=Decode] [--benchmark_min_time=...]
//   (model: $KVSAFE_MODEL_CACHE/SmolLM2-135M-Instruct.Q4_1.gguf, scripts/fetch-model)

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>
#include <link.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/environment.h"
#include "engine/cpu_gemm.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/packed_gemm.h"

namespace {

using kvsafe::engine::KvCache;
using kvsafe::engine::Model;

constexpr std::int64_t kPromptTokens = 128;  // prefill length per sequence
constexpr std::int64_t kDecodeSteps = 32;    // decode steps timed per iteration

struct Machine {
  std::unique_ptr<Model> model;           // as loaded by default: Q4_1 / Q8_0 matrices kept quantized
  std::unique_ptr<Model> float_model;     // keep_quantized = false: every weight expanded to fp32
  double matmul_gflops = 0;               // fp32, 1024^3, at startup
  double copy_gbps = 0;                   // read + write
  double roofline = 0;                    // tokens/s if every FLOP ran at matmul_gflops
  std::function<double()> packed_gflops;  // the engine's 1024^3 product again, best of a few
};
Machine* machine = nullptr;

double seconds(const std::function<void()>& fn, int runs = 3) {
  double best = 1e30;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

int blas_libraries(dl_phdr_info* info, std::size_t, void* out) {
  const std::string name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (name.find("blas") != std::string::npos || name.find("mkl") != std::string::npos) {
    auto& s = *static_cast<std::string*>(out);
    s += (s.empty() ? "" : ", ") + std::filesystem::path(name).filename().string();
  }
  return 0;
}

// The model a benchmark runs: argument 1 is 1 for float32 weights.
const Model& model_of(const benchmark::State& state) {
  return state.range(1) != 0 ? *machine->float_model : *machine->model;
}

// The batch-1 bound: tokens/s if each token streams the model's weights once, as they are held.
double weight_bound(const Model& model) {
  return machine->copy_gbps * 1e9 / static_cast<double>(model.weight_bytes());
}

// The roofline for a benchmark about to run: the matmul rate measured again just before it
// (or the startup one, if that was faster).
// NOTE: this box is a shared VM whose speed drifts by 5-10% over minutes; a rate measured
// once at startup made the same decode run read 0.50-0.67 of "the roofline". Measured
// beside the run, both sides of the ratio see the same machine; taking the faster of the two
// never flatters the ratio.
double roofline_now() {
  const double gflops = std::max(machine->matmul_gflops, machine->packed_gflops());
  return gflops * 1e9 / (2.0 * static_cast<double>(machine->model->parameter_count()));
}

void set_rates(benchmark::State& state, double tokens, double elapsed, double roofline) {
  const double rate = tokens / elapsed;
  state.counters["tokens/s"] = rate;
  state.counters["roofline"] = roofline;
  state.counters["of_roofline"] = rate / roofline;
  state.counters["of_weight_bound"] = rate / weight_bound(model_of(state));
}

// One untimed prefill and decode step at the benchmark's batch first.
// NOTE: without it the first configuration of each batch size paid for touching fresh memory
// (the kernel zeroing new pages for caches and activations), which made the weights-as-stored
// runs (listed first) look 10-15% slower at prefill than the float32 ones after them.
void warm_up(const Model& model, const at::Tensor& tokens) {
  KvCache cache(model, tokens.size(0));
  const at::Tensor logits = model.forward(tokens, at::Tensor(), cache);
  benchmark::DoNotOptimize(model.forward(kvsafe::engine::greedy_tokens(logits).unsqueeze(1), at::Tensor(), cache));
}

void BM_Prefill(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  const Model& model = model_of(state);
  const at::Tensor tokens = at::randint(10, model.config().vocab_size, {batch, kPromptTokens}, at::kLong);
  warm_up(model, tokens);
  const double roofline = roofline_now();
  double elapsed = 0, tokens_done = 0;
  for (auto _ : state) {
    KvCache cache(model, batch);
    const auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(model.forward(tokens, at::Tensor(), cache));
    elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    tokens_done += static_cast<double>(batch * kPromptTokens);
  }
  set_rates(state, tokens_done, elapsed, roofline);
}

void BM_Decode(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  const Model& model = model_of(state);
  const at::Tensor tokens = at::randint(10, model.config().vocab_size, {batch, kPromptTokens}, at::kLong);
  warm_up(model, tokens);
  const double roofline = roofline_now();
  double elapsed = 0, tokens_done = 0;
  for (auto _ : state) {
    state.PauseTiming();
    KvCache cache(model, batch);
    at::Tensor logits = model.forward(tokens, at::Tensor(), cache);
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    for (std::int64_t s = 0; s < kDecodeSteps; ++s) {
      logits = model.forward(kvsafe::engine::greedy_tokens(logits).unsqueeze(1), at::Tensor(), cache);
    }
    elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    tokens_done += static_cast<double>(batch * kDecodeSteps);
  }
  set_rates(state, tokens_done, elapsed, roofline);
}

// batch x {weights as stored, float32 weights}
BENCHMARK(BM_Prefill)
    ->ArgNames({"batch", "fp32"})
    ->ArgsProduct({{1, 8, 32, 64}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Decode)
    ->ArgNames({"batch", "fp32"})
    ->ArgsProduct({{1, 8, 32, 64}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const auto path = kvsafe::Environment::from_process().model_cache_dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr, "engine_bench: %s not found (scripts/fetch-model)\n", path.c_str());
    return 1;
  }
  c10::InferenceMode guard;
  Machine m;
  // NOTE: the machine's fp32 matmul rate, measured twice: at::mm with OpenBLAS's own threads
  // (before the model load makes the BLAS single-threaded, engine/cpu_gemm.h) and the
  // engine's packed kernels over ATen's pool (engine/packed_gemm.h); the roofline takes the
  // faster.
  const at::Tensor a = at::randn({1024, 1024}), b = at::randn({1024, 1024});
  at::Tensor c = at::empty({1024, 1024});
  const double flops = 2.0 * 1024 * 1024 * 1024;
  const double blas_threads_gflops = flops / seconds([&] { benchmark::DoNotOptimize(at::mm(a, b)); }, 10) / 1e9;
  m.model = Model::load(path);
  m.float_model = Model::load(path, {.keep_quantized = false});
  std::vector<float> panels(static_cast<std::size_t>(kvsafe::engine::packed_floats(1024, 1024)));
  kvsafe::engine::pack_panels(b.data_ptr<float>(), 1024, 1024, panels.data());
  const kvsafe::engine::PackedProduct product{.panels = panels.data(), .n = 1024, .out = c.data_ptr<float>()};
  m.packed_gflops = [&] {
    return flops /
           seconds(
               [&] {
                 kvsafe::engine::packed_matmul(a.data_ptr<float>(), 1024, 1024, {&product, 1});
               },
               10) /
           1e9;
  };
  const double packed_gflops = m.packed_gflops();
  m.matmul_gflops = std::max(blas_threads_gflops, packed_gflops);
  const at::Tensor src = at::randn({64 * 1024 * 1024});  // 256 MiB
  at::Tensor dst = at::empty_like(src);
  m.copy_gbps = 2.0 * static_cast<double>(src.nbytes()) / seconds([&] { dst.copy_(src); }) / 1e9;
  const double params = static_cast<double>(m.model->parameter_count());
  m.roofline = m.matmul_gflops * 1e9 / (2.0 * params);
  machine = &m;
  std::string blas;
  dl_iterate_phdr(&blas_libraries, &blas);
  std::printf("threads %d; BLAS libraries loaded: %s; calls go to %s\n", at::get_num_threads(),
              blas.empty() ? "(none found)" : blas.c_str(), kvsafe::engine::blas_description());
  std::printf("1024^3 fp32 matmul: %.1f GFLOP/s with OpenBLAS's threads, %.1f GFLOP/s in the engine's %s kernels\n",
              blas_threads_gflops, packed_gflops, kvsafe::cpu_kernels_name(kvsafe::engine::packed_matmul_kernels()));
  std::printf(
      "fp32 matmul %.1f GFLOP/s; copy %.1f GB/s; %.1fM parameters -> roofline %.0f tokens/s; batch-1 "
      "weight-streaming bound %.0f tokens/s for the weights as stored (%.0f MB), %.0f for float32 (%.0f MB)\n",
      m.matmul_gflops, m.copy_gbps, params / 1e6, m.roofline, weight_bound(*m.model),
      static_cast<double>(m.model->weight_bytes()) / 1e6, weight_bound(*m.float_model),
      static_cast<double>(m.float_model->weight_bytes()) / 1e6);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak RSS %.0f MiB\n", static_cast<double>(usage.ru_maxrss) / 1024.0);
  return 0;
}
