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
// Every benchmark runs once per copy of the CPU kernels (argument `copy`: 0 avx512, 1 avx2,
// 2 generic; common/cpu_kernels.h); a copy this CPU cannot run is reported as skipped.
// BM_Products times a SmolLM2 decode step's matrix products alone (30 layers of q/k/v, o,
// gate/up, down and the lm_head, as float32 panels, grouped as the engine calls them) at 1, 8
// and 32 rows, and BM_Matmul1024 the 1024^3 product, each against OpenBLAS's 1024^3 rate
// measured at startup (of_openblas). To stand in for an AVX2 machine on an AVX-512 one, run
// with OPENBLAS_CORETYPE=Haswell so that OpenBLAS's side uses its AVX2 kernels too.
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
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cpu_kernels.h"
#include "common/environment.h"
#include "engine/cpu_gemm.h"
#include "engine/greedy.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/packed_gemm.h"

namespace {

using kvsafe::engine::KvCache;
using kvsafe::engine::Model;

constexpr std::int64_t kPromptTokens = 128;  // prefill length per sequence
constexpr std::int64_t kDecodeSteps = 64;    // decode steps timed per iteration (llama-batched-bench's -ntg 64)

struct Machine {
  std::unique_ptr<Model> model;           // as loaded by default: Q4_1 / Q8_0 matrices kept quantized
  std::unique_ptr<Model> float_model;     // keep_quantized = false: every weight expanded to fp32
  double blas_gflops = 0;                 // fp32, 1024^3, OpenBLAS with its own threads, at startup
  double matmul_gflops = 0;               // fp32, 1024^3, at startup: the faster of OpenBLAS and the engine
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

// The CPU's model name and the vector extensions the kernel copies care about, from
// /proc/cpuinfo, and OpenBLAS's forced kernel set if any.
std::string cpu_description() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown model", flags;
  while (std::getline(in, line)) {
    const auto value = [&] { return line.substr(line.find(':') + 2); };
    if (line.rfind("model name", 0) == 0 && model == "unknown model") model = value();
    if (line.rfind("flags", 0) == 0 && flags.empty()) flags = " " + value() + " ";
  }
  std::string out = model + "; flags:";
  for (const char* flag : {"sse2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16",
                           "avx512_fp16", "amx_tile"}) {
    if (flags.find(std::string(" ") + flag + " ") != std::string::npos) out += std::string(" ") + flag;
  }
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  out += std::string("; OPENBLAS_CORETYPE=") + (coretype != nullptr ? coretype : "(unset)");
  return out;
}

// The model a benchmark runs: argument 2 is 1 for float32 weights.
const Model& model_of(const benchmark::State& state) {
  return state.range(2) != 0 ? *machine->float_model : *machine->model;
}

constexpr kvsafe::CpuKernels kCopies[] = {kvsafe::CpuKernels::kAvx512, kvsafe::CpuKernels::kAvx2,
                                          kvsafe::CpuKernels::kGeneric};

// Makes the kernels run the copy of argument 0 for the rest of the benchmark; false (and the
// benchmark skipped, saying why) when this CPU cannot run it.
bool use_copy_of(benchmark::State& state) {
  const kvsafe::CpuKernels copy = kCopies[state.range(0)];
  if (!kvsafe::use_cpu_kernels(copy)) {
    state.SkipWithError(("no " + std::string(kvsafe::to_string(copy)) + " here").c_str());
    return false;
  }
  state.SetLabel(std::string(kvsafe::to_string(copy)));
  return true;
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
  // The best copy's rate, whatever copy the benchmark then runs: a slower copy is measured
  // against what the machine can do, not against itself.
  const std::optional<kvsafe::CpuKernels> running = kvsafe::active_cpu_kernels();
  kvsafe::use_cpu_kernels(std::nullopt);
  const double packed = machine->packed_gflops();
  kvsafe::use_cpu_kernels(running);
  const double gflops = std::max(machine->matmul_gflops, packed);
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
  if (!use_copy_of(state)) return;
  const std::int64_t batch = state.range(1);
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
  if (!use_copy_of(state)) return;
  const std::int64_t batch = state.range(1);
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

// The matrices of a SmolLM2 decode step as float32 panels: per layer q, k, v (one grouped
// call), o, gate and up (one call), down; then the tied lm_head.
struct StepWeights {
  struct Weight {
    std::int64_t in, out;
    std::vector<float> panels;
  };
  std::vector<std::vector<Weight>> calls;  // the products of one packed_matmul call each
  double flops_per_row = 0;
};

const StepWeights& step_weights() {
  static const StepWeights weights = [] {
    const kvsafe::engine::ModelConfig& c = machine->model->config();
    const std::int64_t hidden = c.hidden_size, head = c.head_dim, inner = c.intermediate_size;
    const auto make = [](std::int64_t in, std::int64_t out) {
      StepWeights::Weight w{in, out,
                            std::vector<float>(static_cast<std::size_t>(kvsafe::engine::packed_floats(in, out)))};
      for (std::size_t i = 0; i < w.panels.size(); ++i) w.panels[i] = static_cast<float>(i % 97) * 1e-3f - 0.048f;
      return w;
    };
    StepWeights out;
    for (std::int64_t layer = 0; layer < c.num_layers; ++layer) {
      out.calls.push_back(
          {make(hidden, c.num_heads * head), make(hidden, c.num_kv_heads * head), make(hidden, c.num_kv_heads * head)});
      out.calls.push_back({make(c.num_heads * head, hidden)});
      out.calls.push_back({make(hidden, inner), make(hidden, inner)});
      out.calls.push_back({make(inner, hidden)});
    }
    out.calls.push_back({make(hidden, c.vocab_size)});
    for (const auto& call : out.calls) {
      for (const auto& w : call) out.flops_per_row += 2.0 * static_cast<double>(w.in * w.out);
    }
    return out;
  }();
  return weights;
}

void BM_Products(benchmark::State& state) {
  if (!use_copy_of(state)) return;
  const std::int64_t rows = state.range(1);
  const StepWeights& step = step_weights();
  std::int64_t widest = 0;
  for (const auto& call : step.calls) {
    for (const auto& w : call) widest = std::max({widest, w.in, w.out});
  }
  const at::Tensor x = at::randn({rows, widest});
  std::vector<at::Tensor> outs;
  for (const auto& call : step.calls) {
    for (const auto& w : call) outs.push_back(at::empty({rows, w.out}));
  }
  const auto run_step = [&] {
    std::size_t o = 0;
    for (const auto& call : step.calls) {
      std::vector<kvsafe::engine::PackedProduct> products;
      for (const auto& w : call) {
        products.push_back({.panels = w.panels.data(), .n = w.out, .out = outs[o++].data_ptr<float>()});
      }
      kvsafe::engine::packed_matmul(x.data_ptr<float>(), rows, call.front().in, products);
    }
  };
  run_step();  // touch the outputs
  double elapsed = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    run_step();
    elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double gflops =
      step.flops_per_row * static_cast<double>(rows) * static_cast<double>(state.iterations()) / elapsed / 1e9;
  state.counters["GFLOP/s"] = gflops;
  state.counters["of_openblas"] = gflops / machine->blas_gflops;
}

void BM_Matmul1024(benchmark::State& state) {
  if (!use_copy_of(state)) return;
  double gflops = 0;
  for (auto _ : state) gflops = machine->packed_gflops();
  state.counters["GFLOP/s"] = gflops;
  state.counters["of_openblas"] = gflops / machine->blas_gflops;
}

// copy x batch x {weights as stored, float32 weights}
BENCHMARK(BM_Matmul1024)->ArgNames({"copy"})->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Products)
    ->ArgNames({"copy", "rows"})
    ->ArgsProduct({{0, 1, 2}, {1, 8, 32}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Prefill)
    ->ArgNames({"copy", "batch", "fp32"})
    ->ArgsProduct({{0, 1, 2}, {1, 8, 32, 64}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Decode)
    ->ArgNames({"copy", "batch", "fp32"})
    ->ArgsProduct({{0, 1, 2}, {1, 8, 32, 64}, {0, 1}})
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
  m.blas_gflops = blas_threads_gflops;
  m.matmul_gflops = std::max(blas_threads_gflops, packed_gflops);
  const at::Tensor src = at::randn({64 * 1024 * 1024});  // 256 MiB
  at::Tensor dst = at::empty_like(src);
  m.copy_gbps = 2.0 * static_cast<double>(src.nbytes()) / seconds([&] { dst.copy_(src); }) / 1e9;
  const double params = static_cast<double>(m.model->parameter_count());
  m.roofline = m.matmul_gflops * 1e9 / (2.0 * params);
  machine = &m;
  std::string blas;
  dl_iterate_phdr(&blas_libraries, &blas);
  std::printf("CPU: %s\n", cpu_description().c_str());
  std::printf("CPU kernels: %s\n", kvsafe::describe_cpu_kernels().c_str());
  std::printf("threads %d; BLAS libraries loaded: %s; calls go to %s\n", at::get_num_threads(),
              blas.empty() ? "(none found)" : blas.c_str(), kvsafe::engine::blas_description());
  std::printf("1024^3 fp32 matmul: %.1f GFLOP/s with OpenBLAS's threads, %.1f GFLOP/s in the engine's %s kernels\n",
              blas_threads_gflops, packed_gflops,
              std::string(kvsafe::to_string(kvsafe::engine::packed_matmul_kernels())).c_str());
  std::fflush(stdout);
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
