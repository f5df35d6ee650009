// SpeculativeGenerator (engine/speculative_generator.h): draft k, verify k + 1, roll back.

#include "engine/speculative_generator.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <span>

#include "common/error.h"
#include "engine/greedy.h"
#include "engine/kv_cache.h"
#include "engine/model.h"

namespace kvsafe::engine {

namespace {

// int64 [1, n]: one unpadded row of ids.
at::Tensor row_of(std::span<const TokenId> ids) {
  at::Tensor out = at::empty({1, static_cast<std::int64_t>(ids.size())}, at::TensorOptions().dtype(at::kLong));
  std::copy(ids.begin(), ids.end(), out.data_ptr<std::int64_t>());
  return out;
}

// The greedy picks of a batch-1 forward call's logits ([1, vocab] or [1, n, vocab]), in order.
std::vector<TokenId> greedy_picks(const at::Tensor& logits) {
  const at::Tensor chosen = greedy_tokens(logits).to(at::kCPU).contiguous();
  const std::int64_t* p = chosen.data_ptr<std::int64_t>();
  return {p, p + chosen.numel()};
}

}  // namespace

SpeculativeGenerator::SpeculativeGenerator(const Model& target, const Model& draft) : target_(target), draft_(draft) {
  KVSAFE_CHECK(target.config().vocab_size == draft.config().vocab_size,
               "speculative decoding needs the target's vocabulary in the draft: target vocab_size ",
               target.config().vocab_size, ", draft ", draft.config().vocab_size);
}

SpeculativeOutput SpeculativeGenerator::generate(const std::vector<std::vector<TokenId>>& prompts,
                                                 const SpeculativeOptions& options,
                                                 const TokenCallback& on_token) const {
  KVSAFE_CHECK(options.max_new_tokens >= 0, "max_new_tokens must be >= 0, got ", options.max_new_tokens);
  KVSAFE_CHECK(options.draft_tokens >= 1, "draft_tokens must be >= 1, got ", options.draft_tokens);
  KVSAFE_CHECK(options.temperature == 0, "speculative decoding is greedy only (temperature 0), got temperature ",
               options.temperature);
  const std::int64_t vocab = target_.config().vocab_size;
  KVSAFE_CHECK(options.pad_id >= 0 && options.pad_id < vocab, "pad_id ", options.pad_id, " outside the vocabulary");
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    KVSAFE_CHECK(!prompts[i].empty(), "prompt ", i, " is empty");
    for (const TokenId id : prompts[i]) {
      KVSAFE_CHECK(id >= 0 && id < vocab, "prompt ", i, ": token id ", id, " outside the vocabulary [0, ", vocab, ")");
    }
  }

  SpeculativeOutput out;
  out.generations.resize(prompts.size());
  out.stats.resize(prompts.size());
  if (options.max_new_tokens == 0) return out;
  const auto is_stop = [&](TokenId id) {
    return std::find(options.stop_tokens.begin(), options.stop_tokens.end(), id) != options.stop_tokens.end();
  };
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    Generation& g = out.generations[i];
    SpeculativeStats& stats = out.stats[i];
    // Generator's rule for one token: false once the sequence has ended.
    const auto emit = [&](TokenId id) {
      if (is_stop(id)) {
        g.stopped = true;
        g.stop_token = id;
        return false;
      }
      g.tokens.push_back(id);
      if (on_token) on_token(i, id);
      return static_cast<std::int64_t>(g.tokens.size()) < options.max_new_tokens;
    };

    const std::vector<TokenId>& prompt = prompts[i];
    const auto len = static_cast<std::int64_t>(prompt.size());
    // NOTE: a verify call holds up to draft_tokens slots past the accepted ones; capped at the
    // trained context as in Generator (only a hint for the first allocation).
    const auto expected = [&](const Model& model) {
      const std::int64_t all = len + options.max_new_tokens + options.draft_tokens;
      const std::int64_t context = model.config().max_position_embeddings;
      return context > 0 ? std::min(all, context) : all;
    };
    KvCache target_cache(target_, 1, options.target_kv_path);
    KvCache draft_cache(draft_, 1, options.draft_kv_path);
    target_cache.enable_truncation();
    draft_cache.enable_truncation();
    target_cache.expect_tokens(expected(target_));
    draft_cache.expect_tokens(expected(draft_));

    const at::Tensor prompt_row = row_of(prompt);
    const at::Tensor logits = target_.forward(prompt_row, at::Tensor(), target_cache, {.logits = LogitsMode::kLast});
    if (options.on_first_logits) {
      const at::Tensor first_logits = logits.reshape({vocab}).to(at::kCPU, at::kFloat).contiguous();
      options.on_first_logits(i, first_logits.data_ptr<float>(), vocab);
    }
    draft_.forward(prompt_row, at::Tensor(), draft_cache, {.logits = LogitsMode::kNone});
    TokenId last = greedy_picks(logits).front();
    // Invariant between rounds: the target's cache holds the prompt and every accepted token
    // but `last`; the draft's cache plus `pending` holds the prompt and every accepted token.
    std::vector<TokenId> pending{last};
    bool going = emit(last);
    while (going) {
      const auto left = options.max_new_tokens - static_cast<std::int64_t>(g.tokens.size());
      const std::int64_t k = std::min(options.draft_tokens, left - 1);  // the target adds one more
      std::vector<TokenId> verify{last};
      if (k > 0) {
        at::Tensor input = row_of(pending);
        for (std::int64_t j = 0; j < k; ++j) {
          const at::Tensor draft_logits =
              draft_.forward(input, at::Tensor(), draft_cache, {.logits = LogitsMode::kLast});
          verify.push_back(greedy_picks(draft_logits).front());
          if (j + 1 < k) input = row_of(std::span<const TokenId>(&verify.back(), 1));
        }
        pending.clear();
      }
      // verify = [last, p_1 .. p_k]; the target's picks t_0 .. t_k: t_j follows p_j.
      const std::int64_t base = target_cache.tokens();
      const std::vector<TokenId> picks =
          greedy_picks(target_.forward(row_of(verify), at::Tensor(), target_cache, {.logits = LogitsMode::kAll}));
      std::int64_t accepted = 0;
      while (accepted < k &&
             verify[static_cast<std::size_t>(accepted + 1)] == picks[static_cast<std::size_t>(accepted)]) {
        ++accepted;
      }
      ++stats.rounds;
      stats.proposed += k;
      stats.accepted += accepted;
      // Keep `last` and the accepted proposals: the target's own token is the new `last`.
      target_cache.truncate(base + 1 + accepted);
      if (k > 0) {
        // The draft consumed everything up to p_{k-1}: cut it back to p_accepted, or (all
        // accepted) feed it p_k with the next `last`.
        if (accepted < k) {
          draft_cache.truncate(base + 1 + accepted);
        } else {
          pending.push_back(verify.back());
        }
      }
      last = picks[static_cast<std::size_t>(accepted)];
      pending.push_back(last);
      for (std::int64_t j = 1; j <= accepted && going; ++j) going = emit(verify[static_cast<std::size_t>(j)]);
      if (going) going = emit(last);
    }
  }
  return out;
}

}  // namespace kvsafe::engine
