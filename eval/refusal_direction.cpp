#include "eval/refusal_direction.h"

#include <cmath>

#include "common/error.h"

namespace kvsafe::eval {

std::optional<LayerErosion> layer_erosion(std::span<const double> harmful_full, std::span<const double> harmless_full,
                                          std::span<const double> harmful_quantized,
                                          std::span<const double> harmless_quantized) {
  const std::size_t n = harmful_full.size();
  KVSAFE_CHECK(n > 0 && harmless_full.size() == n && harmful_quantized.size() == n && harmless_quantized.size() == n,
               "layer_erosion: the class means have ", harmful_full.size(), ", ", harmless_full.size(), ", ",
               harmful_quantized.size(), " and ", harmless_quantized.size(), " values");
  double norm2 = 0, quantized_norm2 = 0, dot_quantized = 0, harmful_q = 0, harmless_q = 0, drop = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double r = harmful_full[i] - harmless_full[i];
    const double r_q = harmful_quantized[i] - harmless_quantized[i];
    norm2 += r * r;
    quantized_norm2 += r_q * r_q;
    dot_quantized += r * r_q;
    harmful_q += harmful_quantized[i] * r;
    harmless_q += harmless_quantized[i] * r;
    drop += (harmful_full[i] - harmful_quantized[i]) * r;
  }
  if (norm2 <= 0) return std::nullopt;
  const double norm = std::sqrt(norm2);
  LayerErosion out{.direction_norm = norm,
                   .harmful_projection = harmful_q / norm,
                   .harmless_projection = harmless_q / norm,
                   .erosion = drop / norm2,
                   .cosine = quantized_norm2 > 0 ? dot_quantized / (norm * std::sqrt(quantized_norm2)) : 0.0};
  return out;
}

}  // namespace kvsafe::eval
