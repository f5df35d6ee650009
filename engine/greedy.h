#pragma once
// Greedy selection over logits, the generator's pick at temperature 0 (engine/generator.h).

#include <ATen/core/Tensor.h>

namespace kvsafe::engine {

// Greedy picks from forward()'s logits: at::argmax(logits, -1) (the first index of each row's
// maximum; a NaN counts as the maximum, the first NaN wins), int64 with the leading
// dimensions. Float32 CPU logits run vector passes with the rows split over ATen's pool
// (greedy_cpu.cpp); anything else calls at::argmax.
at::Tensor greedy_tokens(const at::Tensor& logits);

}  // namespace kvsafe::engine
