// attention_core (engine/attention_core.h): the dispatch between the float32 CPU kernel and
// the ATen reference that every other device and dtype runs.

#include "engine/attention_core.h"

#include <ATen/ATen.h>

#include <limits>

namespace kvsafe::engine {

at::Tensor attention_core_reference(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                                    const at::Tensor& allowed, double scale, double softcap) {
  // GQA without copies: query head h uses kv head h / group, so the group's queries are
  // stacked along the token axis of their kv head: [batch, kv_heads, group * n, dim].
  const std::int64_t batch = q.size(0), heads = q.size(1), n = q.size(2), dim = q.size(3);
  const std::int64_t kv_heads = keys.size(1), group = heads / kv_heads, total = keys.size(2);
  const at::Tensor qg = q.reshape({batch, kv_heads, group * n, dim});
  at::Tensor scores = at::matmul(qg, keys.transpose(-1, -2)) * scale;
  if (softcap > 0) scores = at::tanh(scores / softcap) * softcap;
  scores = scores.view({batch, kv_heads, group, n, total});
  scores = scores.masked_fill(at::logical_not(allowed.unsqueeze(1)), -std::numeric_limits<float>::infinity());
  const at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  return at::matmul(probs.view({batch, kv_heads, group * n, total}), values).view({batch, heads, n, dim});
}

at::Tensor attention_core(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                          const at::Tensor& allowed, double scale, double softcap) {
  const bool cpu_float = q.device().is_cpu() && q.scalar_type() == at::kFloat && keys.scalar_type() == at::kFloat &&
                         values.scalar_type() == at::kFloat;
  if (cpu_float) return attention_core_cpu(q, keys, values, allowed, scale, softcap);
  return attention_core_reference(q, keys, values, allowed, scale, softcap);
}

}  // namespace kvsafe::engine
