#include "report/sweep_cells.h"

#include <fmt/format.h>

#include "common/error.h"
#include "kernels/kv_quant_spec.h"

namespace kvsafe::report::detail {

namespace {

// The label's spec when it is the sweep's quantizer (int, per-token on both sides, asymmetric,
// every layer, nothing kept exact) whatever its widths; nullopt otherwise.
std::optional<kernels::KvQuantSpec> sweep_quantizer(const std::string& label) {
  try {
    kernels::KvQuantSpec spec = kernels::parse_kv_label(label);
    const bool sweep = spec.scheme == kernels::KvScheme::kInt && !spec.symmetric &&
                       spec.key_granularity == kernels::Granularity::kPerToken &&
                       spec.value_granularity == kernels::Granularity::kPerToken && spec.layers.empty() &&
                       spec.layer_rules.empty() && spec.protect_layers.empty() && spec.outliers.kept() == 0 &&
                       spec.quantize_channels.empty() && spec.residual == 0 &&
                       spec.placement == kernels::Placement::kProjection;
    if (sweep) return spec;
  } catch (const InputError&) {
    // a name the grid gave: not identifiable as part of the sweep
  }
  return std::nullopt;
}

}  // namespace

std::optional<int> sweep_bits(const std::string& label) {
  const auto spec = sweep_quantizer(label);
  if (spec && spec->value_bits == 0) return spec->bits;
  return std::nullopt;
}

std::optional<OneSide> one_side_bits(const std::string& label) {
  const auto spec = sweep_quantizer(label);
  if (!spec || spec->value_bits == 0) return std::nullopt;
  if (spec->value_bits == 16) return OneSide{.bits = spec->bits, .keys = true};
  if (spec->bits == 16) return OneSide{.bits = spec->value_bits, .keys = false};
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
