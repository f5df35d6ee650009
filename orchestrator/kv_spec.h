#pragma once
// The grid's view of one KV-cache quantizer: kernels::KvQuantSpec itself (one spec type and
// one set of validation rules for the whole project, kernels/kv_quant_spec.h). This header
// brings its names into the orchestrator; the grid parser (kv_entry_schema.cpp) adds the
// YAML side: line:col diagnostics, sweeps and zip.

#include "kernels/kv_quant_spec.h"
#include "orchestrator/grid_diagnostics.h"

namespace kvsafe::orchestrator {

using KvSpec = kernels::KvQuantSpec;
using kernels::canonical_json;
using kernels::canonicalize;
using kernels::effective_bits;
using kernels::EffectiveBitsOptions;
using kernels::Granularity;
using kernels::kv_label;
using kernels::kv_spec_from_json;
using kernels::KvScheme;
using kernels::OutlierChannels;
using kernels::parse_granularity;
using kernels::parse_kv_scheme;
using kernels::parse_placement;
using kernels::parse_prefill_attention;
using kernels::Placement;
using kernels::PrefillAttention;
using kernels::to_string;

}  // namespace kvsafe::orchestrator
