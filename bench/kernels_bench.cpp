// KV quantizer throughput: GB/s of quantize+pack and unpack+dequantize per scheme, next to
// memcpy of the same bytes (the float32 K/V tensor) in the same program with the same
// thread count, timed alternately with the kernel; "vs_memcpy" is best memcpy time / best
// kernel time (issue 5 target on CPU: >= 0.5 for int4/int8 per-token and fp8). Shapes
// [batch, heads, tokens, head_dim] = [1, 8, 4096, 128] and [32, 32, 1024, 128]; each at 1
// and 2 threads (".../threads:N"). "*_ref" runs the per-group scalar reference
// (group_codec_impl.h) on one thread, i.e. the codec as it was before the vectorized paths,
// for a before/after in one run.
// With a GPU (KVSAFE_HAVE_CUDA and a device), the CUDA kernels run too; "vs_hbm" is the
// ratio to cudaMemcpy device-to-device of the same bytes.
// KvCacheQuantizer: "cache_append/<scheme>/T" times one decode step (append one token and
// read) after T tokens; incremental storage keeps it flat in T. "cache_repack" is the step
// as it was before (pack + unpack of the whole history), linear in T.
//
//   kernels_bench [--benchmark_filter=...]   (deps: kvsafe_kernels)

#include <benchmark/benchmark.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/group_codec.h"
#include "kernels/group_codec_impl.h"
#include "kernels/kv_cache_quantizer.h"
#include "kernels/kv_quant.h"

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

// memcpy split over at::get_num_threads() threads in contiguous parts, like the codec's
// groups over ATen's pool. NOTE: std::thread, not at::parallel_for: ATen's OpenMP region is
// compiled only into files built with -fopenmp (kernels/CMakeLists.txt), and this one is not.
void parallel_memcpy(char* dst, const char* src, std::int64_t bytes) {
  const int threads = std::max(1, at::get_num_threads());
  const std::int64_t part = (bytes + threads - 1) / threads;
  const auto copy = [=](int t) {
    const std::int64_t begin = std::min(bytes, t * part), end = std::min(bytes, begin + part);
    std::memcpy(dst + begin, src + begin, static_cast<std::size_t>(end - begin));
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(copy, t);
  copy(0);
  for (std::thread& th : pool) th.join();
}

void BM_Memcpy(benchmark::State& state, std::int64_t elements) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  std::vector<float> a(static_cast<std::size_t>(elements), 1.0f), b(a.size());
  for (auto _ : state) {
    parallel_memcpy(reinterpret_cast<char*>(b.data()), reinterpret_cast<const char*>(a.data()), elements * 4);
    benchmark::DoNotOptimize(b.data());
  }
  state.SetBytesProcessed(state.iterations() * elements * 4);
}

// The per-group scalar reference, as quantize_pack_cpu / unpack_dequantize_cpu ran it
// before the vectorized paths (this file has no -fopenmp, so at::parallel_for here runs on
// one thread, as the codec did before kernels/CMakeLists.txt compiled it with OpenMP).
void quantize_ref(const Buffers& b, std::uint8_t* codes, void* scales, void* zeros) {
  const std::int64_t cb = codes_bytes(b.p);
  at::parallel_for(0, b.p.n_groups, std::max(1, (1 << 15) / b.p.group_len), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t g = lo; g < hi; ++g) {
      detail::quantize_group(b.x.data() + g * b.p.group_len, b.p, g, codes + g * cb, scales, zeros,
                             static_cast<int>(cb));
    }
  });
}

void dequantize_ref(const Buffers& b, float* out) {
  const std::int64_t cb = codes_bytes(b.p);
  at::parallel_for(0, b.p.n_groups, std::max(1, (1 << 15) / b.p.group_len), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t g = lo; g < hi; ++g) {
      detail::dequantize_group(b.codes.data() + g * cb, b.scales.data(), b.zeros.data(), b.p, g,
                               out + g * b.p.group_len);
    }
  });
}

// Times `kernel` per iteration (the benchmark's own real time) and, paused, a memcpy of the
// same float32 bytes right after it. NOTE: on a shared machine a separate memcpy measurement
// drifted 2x between benchmarks; the ratio of the best kernel time to the best memcpy time,
// taken alternately, is what "vs_memcpy" reports.
template <typename Kernel>
void run_against_memcpy(benchmark::State& state, std::int64_t elements, Kernel kernel) {
  const std::int64_t bytes = elements * 4;
  std::vector<char> a(static_cast<std::size_t>(bytes), 1), b(static_cast<std::size_t>(bytes));
  parallel_memcpy(b.data(), a.data(), bytes);  // warm
  double best_kernel = 1e30, best_memcpy = 1e30;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    kernel();
    const auto t1 = std::chrono::steady_clock::now();
    state.PauseTiming();
    parallel_memcpy(b.data(), a.data(), bytes);
    benchmark::DoNotOptimize(b.data());
    const auto t2 = std::chrono::steady_clock::now();
    state.ResumeTiming();
    best_kernel = std::min(best_kernel, std::chrono::duration<double>(t1 - t0).count());
    best_memcpy = std::min(best_memcpy, std::chrono::duration<double>(t2 - t1).count());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["best_GBps"] = static_cast<double>(bytes) / best_kernel / 1e9;
  state.counters["memcpy_GBps"] = static_cast<double>(bytes) / best_memcpy / 1e9;
  state.counters["vs_memcpy"] = best_memcpy / best_kernel;
}

void BM_Quantize(benchmark::State& state, Scheme s, std::int64_t elements, bool reference) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  Buffers b = make(s, elements);
  run_against_memcpy(state, elements, [&] {
    if (reference) {
      quantize_ref(b, b.codes.data(), b.scales.data(), b.zeros.data());
    } else {
      quantize_pack_cpu(b.x.data(), b.p, b.codes.data(), b.scales.data(), b.zeros.data());
    }
    benchmark::DoNotOptimize(b.codes.data());
  });
}

void BM_Dequantize(benchmark::State& state, Scheme s, std::int64_t elements, bool reference) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  Buffers b = make(s, elements);
  quantize_pack_cpu(b.x.data(), b.p, b.codes.data(), b.scales.data(), b.zeros.data());
  run_against_memcpy(state, elements, [&] {
    if (reference) {
      dequantize_ref(b, b.out.data());
    } else {
      unpack_dequantize_cpu(b.codes.data(), b.scales.data(), b.zeros.data(), b.p, b.out.data());
    }
    benchmark::DoNotOptimize(b.out.data());
  });
}

// One decode step of KvCacheQuantizer (append one token, read the cache) after `state.range(0)`
// tokens; [batch 1, 8 KV heads, T, 128].
void BM_CacheAppend(benchmark::State& state, const char* label) {
  at::set_num_threads(1);
  const std::int64_t tokens = state.range(0);
  const KvQuantSpec spec = parse_kv_label(label);
  KvCacheQuantizer cache(resolve_side(spec, KvSide::kKey, 0), resolve_side(spec, KvSide::kValue, 0));
  at::manual_seed(1);
  cache.append(at::randn({1, 8, tokens, kHeadDim}), at::randn({1, 8, tokens, kHeadDim}));
  const at::Tensor k = at::randn({1, 8, 1, kHeadDim}), v = at::randn({1, 8, 1, kHeadDim});
  for (auto _ : state) {
    cache.append(k, v);
    auto kv = cache.read();
    benchmark::DoNotOptimize(kv.first.data_ptr());
  }
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

// What a decode step cost before KvCacheQuantizer stored groups incrementally: pack and
// unpack the whole history of keys and values (its old refresh()), at T + 1 tokens.
void BM_CacheRepack(benchmark::State& state, const char* label) {
  at::set_num_threads(1);
  const std::int64_t tokens = state.range(0) + 1;
  const KvQuantSpec spec = parse_kv_label(label);
  const KvSideSpec key = resolve_side(spec, KvSide::kKey, 0), value = resolve_side(spec, KvSide::kValue, 0);
  at::manual_seed(1);
  const at::Tensor k = at::randn({1, 8, tokens, kHeadDim}), v = at::randn({1, 8, tokens, kHeadDim});
  for (auto _ : state) {
    const at::Tensor rk = unpack_cache(pack_cache(k, {}, key)), rv = unpack_cache(pack_cache(v, {}, value));
    benchmark::DoNotOptimize(rk.data_ptr());
    benchmark::DoNotOptimize(rv.data_ptr());
  }
}

int register_all() {
  for (const Shape& shape : kShapes) {
    benchmark::RegisterBenchmark((std::string("memcpy/") + shape.name).c_str(), BM_Memcpy, shape.elements)
        ->ArgName("threads")
        ->Arg(1)
        ->Arg(2)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (const Scheme& s : kSchemes) {
      for (bool reference : {false, true}) {
        const std::string suffix = std::string(reference ? "_ref/" : "/") + s.name + "/" + shape.name;
        benchmark::RegisterBenchmark(("quantize_pack" + suffix).c_str(), BM_Quantize, s, shape.elements, reference)
            ->ArgName("threads")
            ->Arg(1)
            ->Arg(2)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("unpack_dequantize" + suffix).c_str(), BM_Dequantize, s, shape.elements,
                                     reference)
            ->ArgName("threads")
            ->Arg(1)
            ->Arg(2)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
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
  for (const char* label : {"int4-ptok-asym-cache", "kivi2-g32-r128-cache", "fp8e4m3-cache"}) {
    benchmark::RegisterBenchmark((std::string("cache_append/") + label).c_str(), BM_CacheAppend, label)
        ->ArgName("T")
        ->Arg(512)
        ->Arg(2048)
        ->Arg(8192)
        ->Iterations(1000)  // T grows by one per iteration
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("cache_repack/") + label).c_str(), BM_CacheRepack, label)
        ->ArgName("T")
        ->Arg(512)
        ->Arg(2048)
        ->Arg(8192)
        ->Unit(benchmark::kMicrosecond);
  }
  return 0;
}

const int kRegistered = register_all();

}  // namespace
}  // namespace kvsafe::kernels
