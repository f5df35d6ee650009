// Tokenizer throughput: encode MB/s of English text on one core (target >= 5 MB/s, issue
// 3), for SmolLM2's byte-level BPE and stories260K's SentencePiece BPE, plus decode.
// Text: WikiText-2 test split (wiki.test.raw, 1.29 MB) from $KVSAFE_DATA/wikitext-2
// (default ../shared/datasets), read at run time. "vs_target" = MB/s / 5.
//
//   tokenizer_bench [--benchmark_filter=...]
// "warm" reuses one tokenizer (its word cache fills during the first pass, as in a long
// run); "cold" builds a fresh tokenizer per pass, so every word goes through BPE.

#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "common/environment.h"
#include "text/tokenizer.h"

namespace kvsafe::engine {
namespace {

constexpr double kTargetBytesPerSecond = 5e6;

const Environment& environment() {
  static const Environment env = Environment::from_process();
  return env;
}

const std::string& wikitext() {
  static const std::string text = [] {
    const auto path = environment().data_dir / "wikitext-2" / "wiki.test.raw";
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    if (in.good()) out << in.rdbuf();
    return out.str();
  }();
  return text;
}

std::filesystem::path smollm2_path() {
  return environment().model_cache_dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
}
std::filesystem::path stories_path() {
  return environment().data_dir / ".." / "models" / "stories260K" / "stories260K.gguf";
}

bool ready(benchmark::State& state, const std::filesystem::path& model) {
  if (wikitext().empty()) {
    state.SkipWithError("wikitext-2/wiki.test.raw not found under $KVSAFE_DATA (kvsafe datasets pull)");
    return false;
  }
  if (!std::filesystem::exists(model)) {
    state.SkipWithError(("model file absent: " + model.string()).c_str());
    return false;
  }
  return true;
}

void report(benchmark::State& state, std::size_t tokens) {
  const auto bytes = static_cast<double>(wikitext().size());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["bytes_per_token"] = bytes / static_cast<double>(tokens);
  state.counters["vs_target"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * bytes / kTargetBytesPerSecond, benchmark::Counter::kIsRate);
}

void encode_warm(benchmark::State& state, const std::filesystem::path& model) {
  if (!ready(state, model)) return;
  const auto tokenizer = Tokenizer::load(model);
  std::size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tokenizer->encode(wikitext());
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  report(state, tokens);
}

void encode_cold(benchmark::State& state, const std::filesystem::path& model) {
  if (!ready(state, model)) return;
  std::size_t tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto tokenizer = Tokenizer::load(model);
    state.ResumeTiming();
    const auto ids = tokenizer->encode(wikitext());
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
    state.PauseTiming();
    tokenizer.reset();
    state.ResumeTiming();
  }
  report(state, tokens);
}

void BM_EncodeSmolLM2Warm(benchmark::State& state) {
  encode_warm(state, smollm2_path());
}
void BM_EncodeSmolLM2Cold(benchmark::State& state) {
  encode_cold(state, smollm2_path());
}
void BM_EncodeStories260KWarm(benchmark::State& state) {
  encode_warm(state, stories_path());
}

void BM_DecodeSmolLM2(benchmark::State& state) {
  if (!ready(state, smollm2_path())) return;
  const auto tokenizer = Tokenizer::load(smollm2_path());
  const auto ids = tokenizer->encode(wikitext());
  for (auto _ : state) {
    const std::string text = tokenizer->decode(ids);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(wikitext().size()));
}

void BM_LoadSmolLM2(benchmark::State& state) {
  if (!ready(state, smollm2_path())) return;
  for (auto _ : state) benchmark::DoNotOptimize(Tokenizer::load(smollm2_path()).get());
}

BENCHMARK(BM_EncodeSmolLM2Warm)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeSmolLM2Cold)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeStories260KWarm)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeSmolLM2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadSmolLM2)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvsafe::engine

BENCHMARK_MAIN();
