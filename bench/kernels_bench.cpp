// KV quantizer throughput: GB/s of quantize+pack and unpack+dequantize per scheme, next to
// memcpy of the same bytes (the float32 K/V tensor) in the same program; "vs_memcpy" is the
// ratio (issue 5 target on CPU: >= 0.5 for int4/int8 per-token and fp8). Shapes
// [batch, heads, tokens, head_dim] = [1, 8, 4096, 128] and [32, 32, 1024, 128].
// With a GPU (KVSAFE_HAVE_CUDA and a device), the CUDA kernels run too; "vs_hbm" is the
// ratio to cudaMemcpy device-to-device of the same bytes.
//
//   kernels_bench [--benchmark_filter=...]   (deps: kvsafe_kernels)

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/group_codec.h"

#if defined(KVSAFE_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace kvsafe::kernels {
namespace {

struct Scheme {
  const char* name;
  Codec codec;
  int bits;
  int group_len;  // 0: one row of head_dim (per token)
};

const Scheme kSchemes[] = {
    {"int8_ptok_sym", Codec::kIntSym, 8, 0},
    {"int4_ptok_asym", Codec::kIntAsym, 4, 0},
    {"int2_ptok_asym", Codec::kIntAsym, 2, 0},
    {"int3_g32_asym", Codec::kIntAsym, 3, 32},
    {"int4_g64_sym", Codec::kIntSym, 4, 64},
    {"fp8_e4m3", Codec::kFp8E4M3, 8, 0},
    {"fp8_e5m2", Codec::kFp8E5M2, 8, 0},
    {"q8_0", Codec::kQ8_0, 8, 32},
    {"q4_0", Codec::kQ4_0, 4, 32},
    {"q4_1", Codec::kQ4_1, 4, 32},
    {"q5_1", Codec::kQ5_1, 5, 32},
};

struct Shape {
  const char* name;
  std::int64_t elements;
};
const Shape kShapes[] = {{"1x8x4096x128", 1LL * 8 * 4096 * 128}, {"32x32x1024x128", 32LL * 32 * 1024 * 128}};
constexpr int kHeadDim = 128;

struct Buffers {
  std::vector<float> x, out;
  std::vector<std::uint8_t> codes, scales, zeros;
  CodecParams p;
};

Buffers make(const Scheme& s, std::int64_t elements) {
  Buffers b;
  b.p = {.codec = s.codec, .bits = s.bits, .group_len = s.group_len > 0 ? s.group_len : kHeadDim};
  b.p.n_groups = elements / b.p.group_len;
  b.x.resize(static_cast<std::size_t>(elements));
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.0f, 2.0f);
  for (float& v : b.x) v = n(rng);
  b.out.resize(b.x.size());
  b.codes.resize(static_cast<std::size_t>(b.p.n_groups * codes_bytes(b.p)));
  b.scales.resize(static_cast<std::size_t>(b.p.n_groups * 4));
  b.zeros.resize(b.scales.size());
  return b;
}

void set_rate(benchmark::State& state, std::int64_t bytes, double memcpy_gbps) {
  state.SetBytesProcessed(state.iterations() * bytes);
  // Filled in by the counters below from wall time per iteration.
  state.counters["memcpy_GBps"] = memcpy_gbps;
}

double memcpy_gbps(std::int64_t bytes) {
  std::vector<char> a(static_cast<std::size_t>(bytes), 1), b(static_cast<std::size_t>(bytes));
  std::memcpy(b.data(), a.data(), a.size());  // warm
  const auto t0 = std::chrono::steady_clock::now();
  int reps = 0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(300)) {
    std::memcpy(b.data(), a.data(), a.size());
    benchmark::DoNotOptimize(b.data());
    ++reps;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(bytes) * reps / s / 1e9;
}

void BM_Memcpy(benchmark::State& state, std::int64_t elements) {
  std::vector<float> a(static_cast<std::size_t>(elements), 1.0f), b(a.size());
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), a.size() * 4);
    benchmark::DoNotOptimize(b.data());
  }
  state.SetBytesProcessed(state.iterations() * elements * 4);
}

void BM_Quantize(benchmark::State& state, Scheme s, std::int64_t elements) {
  Buffers b = make(s, elements);
  const double ref = memcpy_gbps(elements * 4);
  for (auto _ : state) {
    quantize_pack_cpu(b.x.data(), b.p, b.codes.data(), b.scales.data(), b.zeros.data());
    benchmark::DoNotOptimize(b.codes.data());
  }
  set_rate(state, elements * 4, ref);
  state.counters["vs_memcpy"] =
      benchmark::Counter(static_cast<double>(elements * 4) / 1e9 / ref, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Dequantize(benchmark::State& state, Scheme s, std::int64_t elements) {
  Buffers b = make(s, elements);
  quantize_pack_cpu(b.x.data(), b.p, b.codes.data(), b.scales.data(), b.zeros.data());
  const double ref = memcpy_gbps(elements * 4);
  for (auto _ : state) {
    unpack_dequantize_cpu(b.codes.data(), b.scales.data(), b.zeros.data(), b.p, b.out.data());
    benchmark::DoNotOptimize(b.out.data());
  }
  set_rate(state, elements * 4, ref);
  state.counters["vs_memcpy"] =
      benchmark::Counter(static_cast<double>(elements * 4) / 1e9 / ref, benchmark::Counter::kIsIterationInvariantRate);
}

#if defined(KVSAFE_HAVE_CUDA)
void BM_CudaQuantizeDequantize(benchmark::State& state, Scheme s, std::int64_t elements, bool quantize) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  Buffers b = make(s, elements);
  float *gx = nullptr, *gout = nullptr, *gcopy = nullptr;
  std::uint8_t *gc = nullptr, *gs = nullptr, *gz = nullptr;
  const std::size_t bytes = static_cast<std::size_t>(elements) * 4;
  if (cudaMalloc(&gx, bytes) != cudaSuccess || cudaMalloc(&gout, bytes) != cudaSuccess ||
      cudaMalloc(&gcopy, bytes) != cudaSuccess || cudaMalloc(&gc, b.codes.size()) != cudaSuccess ||
      cudaMalloc(&gs, b.scales.size()) != cudaSuccess || cudaMalloc(&gz, b.zeros.size()) != cudaSuccess) {
    state.SkipWithError("cudaMalloc failed");
    return;
  }
  (void)cudaMemcpy(gx, b.x.data(), bytes, cudaMemcpyHostToDevice);
  quantize_pack_cuda(gx, b.p, gc, gs, gz);
  cudaEvent_t t0, t1;
  (void)cudaEventCreate(&t0);
  (void)cudaEventCreate(&t1);
  (void)cudaEventRecord(t0);
  for (int i = 0; i < 10; ++i) (void)cudaMemcpy(gcopy, gx, bytes, cudaMemcpyDeviceToDevice);
  (void)cudaEventRecord(t1);
  (void)cudaEventSynchronize(t1);
  float ms = 0;
  (void)cudaEventElapsedTime(&ms, t0, t1);
  const double hbm = 2.0 * static_cast<double>(bytes) * 10 / (ms / 1e3) / 1e9;  // read + write
  for (auto _ : state) {
    if (quantize) {
      quantize_pack_cuda(gx, b.p, gc, gs, gz);
    } else {
      unpack_dequantize_cuda(gc, gs, gz, b.p, gout);
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["d2d_memcpy_GBps"] = hbm;
  for (void* ptr : {static_cast<void*>(gx), static_cast<void*>(gout), static_cast<void*>(gcopy), static_cast<void*>(gc),
                    static_cast<void*>(gs), static_cast<void*>(gz)}) {
    (void)cudaFree(ptr);
  }
}
#endif

int register_all() {
  for (const Shape& shape : kShapes) {
    benchmark::RegisterBenchmark((std::string("memcpy/") + shape.name).c_str(), BM_Memcpy, shape.elements)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (const Scheme& s : kSchemes) {
      benchmark::RegisterBenchmark((std::string("quantize_pack/") + s.name + "/" + shape.name).c_str(), BM_Quantize, s,
                                   shape.elements)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark((std::string("unpack_dequantize/") + s.name + "/" + shape.name).c_str(),
                                   BM_Dequantize, s, shape.elements)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
#if defined(KVSAFE_HAVE_CUDA)
      for (bool q : {true, false}) {
        benchmark::RegisterBenchmark(
            (std::string(q ? "cuda_quantize_pack/" : "cuda_unpack_dequantize/") + s.name + "/" + shape.name).c_str(),
            BM_CudaQuantizeDequantize, s, shape.elements, q)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
#endif
    }
  }
  return 0;
}

const int kRegistered = register_all();

}  // namespace
}  // namespace kvsafe::kernels
