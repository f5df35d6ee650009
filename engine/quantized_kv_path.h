#pragma once
// The glue between the engine's KV path (engine/kv_path.h) and the quantizers of kernels/:
// one KvPath for any kernels::KvQuantSpec.
//
//   auto path = make_kv_path(kernels::parse_kv_label("int4-ptok-asym"));
//   generator.generate(prompts, {.kv_path = path.get()});    // nullptr for `none`
//
//  - placement projection (the paper): project() resolves the spec for (side, layer) and
//    calls kernels::fake_quantize_projection on the k_proj/v_proj output of the call; the
//    paper's per-call MSE is returned.
//  - placement cache (serving): make_store() returns a store backed by
//    kernels::KvCacheQuantizer (per sequence and KV head, padding excluded, KIVI residual,
//    FP8 scale frozen at the first append); prefill_attention follows the spec. pre_rope
//    (KVQuant): keys_before_rope() is true, the store quantizes keys before RoPE the same
//    way, and attention rotates the dequantized history (engine/kv_path.h).
// Layers the spec leaves exact (protect_layers, `layers`) pass through untouched.
// The kNone spec gives no path at all: make_kv_path returns nullptr, the plain model.

#include <memory>

#include "engine/kv_path.h"
#include "kernels/kv_quant_spec.h"

namespace kvsafe::engine {

// nullptr for scheme none (full precision); throws InputError for an invalid spec.
std::unique_ptr<KvPath> make_kv_path(const kernels::KvQuantSpec& spec);

}  // namespace kvsafe::engine
