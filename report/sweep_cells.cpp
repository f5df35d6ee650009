#include "report/sweep_cells.h"

#include <fmt/format.h>

#include "common/error.h"
#include "kernels/kv_quant_spec.h"

namespace kvsafe::report::detail {

std::optional<int> sweep_bits(const std::string& label) {
  try {
    const kernels::KvQuantSpec spec = kernels::parse_kv_label(label);
    const bool sweep = spec.scheme == kernels::KvScheme::kInt && !spec.symmetric &&
                       spec.key_granularity == kernels::Granularity::kPerToken &&
                       spec.value_granularity == kernels::Granularity::kPerToken && spec.value_bits == 0 &&
                       spec.layers.empty() && spec.layer_rules.empty() && spec.protect_layers.empty() &&
                       spec.outliers.kept() == 0 && spec.quantize_channels.empty() && spec.residual == 0 &&
                       spec.placement == kernels::Placement::kProjection;
    if (sweep) return spec.bits;
  } catch (const InputError&) {
    // a name the grid gave: not identifiable as part of the sweep
  }
  return std::nullopt;
}

std::map<int, const KvSummaryRow*, std::greater<>> refusal_sweep(const SummaryGroup& group) {
  std::map<int, const KvSummaryRow*, std::greater<>> by_bits;
  for (const KvSummaryRow& row : group.rows) {
    if (const auto bits = sweep_bits(row.kv_label); bits && row.flip) by_bits[*bits] = &row;
  }
  return by_bits;
}

Cell flip_cell(const eval::Proportion& flip, std::int64_t baseline_judged, std::int64_t min_baseline_refusals) {
  if (flip.trials < min_baseline_refusals || flip.trials == 0) {
    return cell_text(fmt::format("undefined: the baseline refused {} of {}", flip.trials, baseline_judged));
  }
  return cell_rate(flip);
}

}  // namespace kvsafe::report::detail
