// Generator (engine/generator.h): left-padded batches, prefill, one decode step per token.

#include "engine/generator.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <random>

#include "common/error.h"
#include "engine/greedy.h"
#include "engine/kv_cache.h"
#include "engine/model.h"

namespace kvsafe::engine {

namespace {

// A prompt's own random stream: independent of the batch it lands in.
std::mt19937_64 prompt_rng(std::uint64_t seed, std::size_t prompt) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(prompt), static_cast<std::uint32_t>(prompt >> 32)};
  return std::mt19937_64(seq);
}

}  // namespace

std::vector<Generation> Generator::generate(const std::vector<std::vector<TokenId>>& prompts,
                                            const GenerationOptions& options, const TokenCallback& on_token) const {
  KVSAFE_CHECK(options.max_new_tokens >= 0, "max_new_tokens must be >= 0, got ", options.max_new_tokens);
  KVSAFE_CHECK(options.batch_size > 0, "batch_size must be positive, got ", options.batch_size);
  KVSAFE_CHECK(options.temperature >= 0, "temperature must be >= 0, got ", options.temperature);
  const std::int64_t vocab = model_.config().vocab_size;
  KVSAFE_CHECK(options.pad_id >= 0 && options.pad_id < vocab, "pad_id ", options.pad_id, " outside the vocabulary");
  std::vector<Generation> out(prompts.size());
  const auto batch_size = static_cast<std::size_t>(options.batch_size);
  for (std::size_t first = 0; first < prompts.size(); first += batch_size) {
    const std::size_t count = std::min(batch_size, prompts.size() - first);
    std::size_t longest = 0;
    for (std::size_t i = 0; i < count; ++i) {
      KVSAFE_CHECK(!prompts[first + i].empty(), "prompt ", first + i, " is empty");
      longest = std::max(longest, prompts[first + i].size());
    }
    const auto b = static_cast<std::int64_t>(count), len = static_cast<std::int64_t>(longest);
    at::Tensor tokens = at::full({b, len}, options.pad_id, at::TensorOptions().dtype(at::kLong));
    at::Tensor valid = at::zeros({b, len}, at::TensorOptions().dtype(at::kBool));
    for (std::size_t i = 0; i < count; ++i) {
      const auto& p = prompts[first + i];
      const auto pad = static_cast<std::int64_t>(longest - p.size());
      auto* row = tokens.data_ptr<std::int64_t>() + static_cast<std::int64_t>(i) * len;
      for (std::size_t t = 0; t < p.size(); ++t) row[pad + static_cast<std::int64_t>(t)] = p[t];
      valid.select(0, static_cast<std::int64_t>(i)).narrow(0, pad, len - pad).fill_(true);
    }
    // What the repetition penalty sees per sequence: the padded prompt row, then its tokens.
    std::vector<std::vector<TokenId>> seen(options.repetition_penalty != 1.0 ? count : 0);
    for (std::size_t i = 0; i < seen.size(); ++i) {
      const auto* row = tokens.data_ptr<std::int64_t>() + static_cast<std::int64_t>(i) * len;
      seen[i].assign(row, row + len);
    }
    std::vector<std::mt19937_64> rngs;
    for (std::size_t i = 0; i < count; ++i) rngs.push_back(prompt_rng(options.seed, first + i));
    std::uniform_real_distribution<double> uniform(0.0, 1.0);

    KvCache cache(model_, b, options.kv_path);
    // NOTE: capped at the trained context (when the config gives one): max_new_tokens may be
    // far above what sequences that stop early will use.
    const std::int64_t context = model_.config().max_position_embeddings;
    cache.expect_tokens(context > 0 ? std::min(len + options.max_new_tokens, context) : len + options.max_new_tokens);
    std::vector<bool> done(count, options.max_new_tokens == 0);
    if (options.max_new_tokens == 0) continue;
    at::Tensor logits =
        model_.forward(tokens, valid, cache, {.logits = LogitsMode::kLast, .padding_queries = options.padding_queries});
    if (options.on_first_logits) {
      const at::Tensor first_logits = logits.reshape({b, vocab}).to(at::kCPU, at::kFloat).contiguous();
      for (std::size_t i = 0; i < count; ++i)
        options.on_first_logits(first + i, first_logits.data_ptr<float>() + static_cast<std::int64_t>(i) * vocab,
                                vocab);
    }
    for (std::int64_t step = 0; step < options.max_new_tokens; ++step) {
      std::vector<std::int64_t> next(count, options.pad_id);
      at::Tensor chosen;
      at::Tensor cpu_logits;
      const bool penalized = options.repetition_penalty != 1.0;
      if (options.temperature == 0 && !penalized) {
        chosen = greedy_tokens(logits).to(at::kCPU).contiguous();
      } else {
        cpu_logits = logits.reshape({b, vocab}).to(at::kCPU, at::kFloat).contiguous();
      }
      if (penalized) {
        for (std::size_t i = 0; i < count; ++i) {
          float* row = cpu_logits.data_ptr<float>() + static_cast<std::int64_t>(i) * vocab;
          apply_repetition_penalty(row, vocab, seen[i], options.repetition_penalty);
        }
        // The penalized row's first maximum, as torch.argmax picks it.
        if (options.temperature == 0) chosen = cpu_logits.argmax(1).contiguous();
      }
      for (std::size_t i = 0; i < count; ++i) {
        if (done[i]) continue;
        TokenId id = 0;
        if (options.temperature == 0) {
          id = static_cast<TokenId>(chosen.data_ptr<std::int64_t>()[i]);
        } else {
          auto& rng = rngs[i];
          id = sample_token(
              cpu_logits.data_ptr<float>() + static_cast<std::int64_t>(i) * vocab, vocab, options.temperature,
              options.top_p, [&] { return uniform(rng); }, options.top_k);
        }
        Generation& g = out[first + i];
        if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), id) != options.stop_tokens.end()) {
          g.stopped = true;
          g.stop_token = id;
          done[i] = true;
        } else {
          g.tokens.push_back(id);
          if (on_token) on_token(first + i, id);
        }
        next[i] = id;
        if (penalized) seen[i].push_back(id);
        if (static_cast<std::int64_t>(g.tokens.size()) >= options.max_new_tokens) done[i] = true;
      }
      if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
      // Sequences that stopped this step still feed their stop token (as transformers does);
      // earlier-stopped ones feed pad_id.
      const at::Tensor step_tokens = at::tensor(next, at::TensorOptions().dtype(at::kLong)).view({b, 1});
      logits = model_.forward(step_tokens, at::Tensor(), cache,
                              {.logits = LogitsMode::kLast, .padding_queries = options.padding_queries});
    }
  }
  return out;
}

}  // namespace kvsafe::engine
