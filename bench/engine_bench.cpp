// Engine throughput: SmolLM2-135M prefill and decode tokens/s at batch 1, 8, 32, 64, next to
// what this machine can do: measured fp32 matmul GFLOP/s (-> roofline tokens/s at 2 x params
// FLOP per token) and memory bandwidth (-> the batch-1 weight-streaming bound). Prints a
// table; numbers go into issue notes as ratios, never asserted.
//
//   build/bench/engine_bench [model.gguf] [prompt_tokens=128] [decode_steps=32]

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <link.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/kv_cache.h"
#include "engine/model.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Best of several runs of fn, in seconds.
template <typename Fn>
double best_of(int runs, Fn&& fn) {
  double best = 1e30;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    fn();
    best = std::min(best, seconds_since(start));
  }
  return best;
}

double matmul_gflops(std::int64_t m, std::int64_t k, std::int64_t n) {
  const at::Tensor a = at::randn({m, k});
  const at::Tensor b = at::randn({k, n});
  at::Tensor c = at::mm(a, b);
  const int reps = 10;
  const double t = best_of(3, [&] {
    for (int i = 0; i < reps; ++i) c = at::mm(a, b);
  });
  return 2.0 * static_cast<double>(m * k * n) * reps / t / 1e9;
}

double copy_gbytes_per_s() {
  const at::Tensor src = at::randn({64 * 1024 * 1024});  // 256 MiB
  at::Tensor dst = at::empty_like(src);
  const double t = best_of(3, [&] { dst.copy_(src); });
  return 2.0 * static_cast<double>(src.nbytes()) / t / 1e9;  // read + write
}

int blas_libraries(dl_phdr_info* info, std::size_t, void* out) {
  const std::string name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (name.find("blas") != std::string::npos || name.find("mkl") != std::string::npos) {
    auto& s = *static_cast<std::string*>(out);
    s += (s.empty() ? "" : ", ") + std::filesystem::path(name).filename().string();
  }
  return 0;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kvsafe::engine;
  std::string path;
  if (argc > 1) {
    path = argv[1];
  } else {
    const char* cache = std::getenv("KVSAFE_MODEL_CACHE");
    const char* home = std::getenv("HOME");
    path = (cache != nullptr ? std::filesystem::path(cache)
                             : std::filesystem::path(home != nullptr ? home : "/") / ".cache/kvsafe/models") /
           "SmolLM2-135M-Instruct.Q4_1.gguf";
  }
  const std::int64_t prompt = argc > 2 ? std::atoll(argv[2]) : 128;
  const std::int64_t steps = argc > 3 ? std::atoll(argv[3]) : 32;
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr, "engine_bench: %s not found (scripts/fetch-model)\n", path.c_str());
    return 1;
  }
  const auto model = Model::load(path);
  c10::InferenceMode guard;
  std::string blas;
  dl_iterate_phdr(&blas_libraries, &blas);
  const double gflops = matmul_gflops(1024, 1024, 1024);
  const double gflops_model = matmul_gflops(64, model->config().hidden_size, model->config().intermediate_size);
  const double bandwidth = copy_gbytes_per_s();
  const double params = static_cast<double>(model->parameter_count());
  const double roofline = gflops * 1e9 / (2.0 * params);
  const double weight_bound = bandwidth * 1e9 / (params * 4.0);
  std::printf("threads %d; BLAS libraries loaded: %s\n", at::get_num_threads(), blas.c_str());
  std::printf("fp32 matmul: %.1f GFLOP/s (1024^3), %.1f GFLOP/s (64 x %lld x %lld); copy %.1f GB/s\n", gflops,
              gflops_model, static_cast<long long>(model->config().hidden_size),
              static_cast<long long>(model->config().intermediate_size), bandwidth);
  std::printf(
      "model %.1fM parameters: roofline %.0f tokens/s (2 x params FLOP/token), batch-1 weight-streaming "
      "bound %.0f tokens/s\n",
      params / 1e6, roofline, weight_bound);
  std::printf("%6s %16s %12s %16s %12s %14s\n", "batch", "prefill tok/s", "of roofline", "decode tok/s", "of roofline",
              "of weight bnd");
  for (const std::int64_t batch : {1, 8, 32, 64}) {
    const at::Tensor tokens = at::randint(10, model->config().vocab_size, {batch, prompt}, at::kLong);
    double prefill = 0, decode = 0;
    for (int rep = 0; rep < 2; ++rep) {  // the second run is measured (warm allocator, threads)
      KvCache cache(*model, batch);
      auto start = Clock::now();
      at::Tensor logits = model->forward(tokens, at::Tensor(), cache);
      prefill = static_cast<double>(batch * prompt) / seconds_since(start);
      start = Clock::now();
      for (std::int64_t s = 0; s < steps; ++s) {
        logits = model->forward(logits.argmax(-1).unsqueeze(1), at::Tensor(), cache);
      }
      decode = static_cast<double>(batch * steps) / seconds_since(start);
    }
    std::printf("%6lld %16.1f %11.0f%% %16.1f %11.0f%% %13.0f%%\n", static_cast<long long>(batch), prefill,
                100 * prefill / roofline, decode, 100 * decode / roofline, 100 * decode / weight_bound);
    std::fflush(stdout);
  }
  std::printf("peak RSS %.0f MiB\n", peak_rss_mib());
  return 0;
}
