// Model loading speed: open + map + dequantize SmolLM2-135M-Instruct (Q4_1 GGUF, from
// scripts/fetch-model), against a memcpy of the same bytes. Report the ratio
// dequantize / memcpy (time per byte of the file's tensor data); the target is "bounded by
// disk read + dequantization rate", so the open/map part must be negligible.
//
//   model_load_bench [--benchmark_filter=...]   # uses benchmark_main; deps: kvsafe_engine
//
// The file is read through the page cache (run once to warm it); MB/s = stored tensor
// bytes (not output floats) per second.

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "modelfile/gguf_reader.h"
#include "modelfile/weights_loader.h"

namespace kvsafe::engine {
namespace {

std::filesystem::path model_path() {
  const char* cache = std::getenv("KVSAFE_MODEL_CACHE");
  const char* home = std::getenv("HOME");
  const std::filesystem::path dir =
      cache != nullptr && *cache != '\0'
          ? std::filesystem::path(cache)
          : std::filesystem::path(home != nullptr ? home : "/") / ".cache" / "kvsafe" / "models";
  return dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

bool have_model(benchmark::State& state) {
  if (std::filesystem::exists(model_path())) return true;
  state.SkipWithError("SmolLM2 GGUF missing: run scripts/fetch-model");
  return false;
}

std::uint64_t tensor_bytes(const GgufFile& f) {
  std::uint64_t n = 0;
  for (const auto& t : f.tensors()) n += t.n_bytes;
  return n;
}

// Header parse + mmap only (no tensor data touched).
void BM_OpenAndMap(benchmark::State& state) {
  if (!have_model(state)) return;
  for (auto _ : state) {
    auto f = GgufFile::open(model_path());
    benchmark::DoNotOptimize(f->tensors().size());
  }
}
BENCHMARK(BM_OpenAndMap)->Unit(benchmark::kMillisecond);

// Open + map + dequantize every tensor (storage order) into one reused float buffer.
void BM_OpenMapDequantizeAll(benchmark::State& state) {
  if (!have_model(state)) return;
  std::vector<float> out;
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    auto f = GgufFile::open(model_path());
    bytes = tensor_bytes(*f);
    for (const auto& t : f->tensors()) {
      out.resize(t.n_elements);
      f->dequantize(t, out);
      benchmark::ClobberMemory();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes * state.iterations()));
}
BENCHMARK(BM_OpenMapDequantizeAll)->Unit(benchmark::kMillisecond);

// The same through WeightsLoader (HF names, Q/K un-permute).
void BM_WeightsLoaderAll(benchmark::State& state) {
  if (!have_model(state)) return;
  std::vector<float> out;
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    auto w = WeightsLoader::open(model_path());
    bytes = tensor_bytes(*w->gguf());
    for (const auto& name : w->tensor_names()) {
      out.resize(w->info(name).n_elements);
      w->load(name, out);
      benchmark::ClobberMemory();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes * state.iterations()));
}
BENCHMARK(BM_WeightsLoaderAll)->Unit(benchmark::kMillisecond);

// Baseline: memcpy of each tensor's stored bytes out of the mapping.
void BM_MemcpyTensorBytes(benchmark::State& state) {
  if (!have_model(state)) return;
  auto f = GgufFile::open(model_path());
  std::vector<std::byte> out;
  const std::uint64_t bytes = tensor_bytes(*f);
  for (auto _ : state) {
    for (const auto& t : f->tensors()) {
      const auto src = f->tensor_data(t);
      out.resize(src.size());
      std::memcpy(out.data(), src.data(), src.size());
      benchmark::ClobberMemory();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes * state.iterations()));
}
BENCHMARK(BM_MemcpyTensorBytes)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvsafe::engine
