#pragma once
// The grid's view of one KV-cache quantizer: what a cell asks the engine for. It is the
// orchestrator's own small value type (kernels:: owns the quantizer itself), with the
// canonical form that cell ids hash, a short label for tables, and an effective-bits
// estimate for memory cost.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orchestrator/grid_diagnostics.h"

namespace kvsafe::orchestrator {

enum class KvScheme { kNone, kInt, kFp8E4M3, kFp8E5M2, kKivi };
enum class Granularity { kPerToken, kPerChannel, kPerGroup, kPerTensor };
enum class Placement { kProjection, kCache };
enum class PrefillAttention { kExact, kQuantized };

std::string_view to_string(KvScheme scheme);           // "none", "int", "fp8_e4m3", ...
std::string_view to_string(Granularity granularity);   // "per_token", ...
std::string_view to_string(Placement placement);       // "projection" | "cache"
std::string_view to_string(PrefillAttention prefill);  // "exact" | "quantized"
std::optional<KvScheme> parse_kv_scheme(std::string_view text);
std::optional<Granularity> parse_granularity(std::string_view text);
std::optional<Placement> parse_placement(std::string_view text);
std::optional<PrefillAttention> parse_prefill_attention(std::string_view text);

// Channels kept exact: a count (the largest-magnitude ones, chosen at run time) or an
// explicit list of channel ids.
struct OutlierChannels {
  int count = 0;                // used when !explicit_list
  std::vector<int> channels{};  // sorted, unique; used when explicit_list
  bool explicit_list = false;

  int kept() const { return explicit_list ? static_cast<int>(channels.size()) : count; }
  bool operator==(const OutlierChannels&) const = default;
};

struct KvSpec {
  KvScheme scheme = KvScheme::kNone;
  int bits = 16;                                                  // 2..8 for int/kivi; 8 for fp8; 16 for none
  bool symmetric = false;                                         // int only
  Granularity key_granularity = Granularity::kPerToken;           // int only
  Granularity value_granularity = Granularity::kPerToken;         // int only
  int group_size = 0;                                             // >0 iff used (per_group side, or kivi)
  Placement placement = Placement::kProjection;                   // projection = the paper's hooks
  PrefillAttention prefill_attention = PrefillAttention::kExact;  // meaningful with placement cache
  int residual = 0;                                               // full-precision recent-token window
  std::vector<int> protect_layers{};                              // kept at fp16; sorted, unique
  OutlierChannels outliers{};
  std::string name{};  // label override from the grid; not part of the identity

  bool operator==(const KvSpec&) const = default;
};

// The canonical form: scheme-irrelevant fields reset to their neutral value (bits of
// `none`, symmetric of kivi, group_size when no side is per_group, prefill_attention for
// placement projection, ...), int 16-bit turned into `none`, lists sorted and unique.
// Two specs that quantize the same way canonicalize equal (the name is kept as is).
KvSpec canonicalize(KvSpec spec);

// Sorted-key, whitespace-free JSON of canonicalize(spec) without the name, e.g.
// {"bits":4,"key_granularity":"per_token",...,"scheme":"int","symmetric":false,...}.
std::string canonical_json(const KvSpec& spec);

// Short label for tables and CLI flags: `none`, `int4-ptok-asym`, `int3-ptensor-sym`,
// `int4-g64-sym`, `int4-kpchan-vg32-asym` (keys and values differ), `kivi2-r128`,
// `fp8e5m2`, `int4-ptok-asym+fp16[0,2]`; suffixes `-r<N>` (residual window), `+out<N>` or
// `+out[...]` (outlier channels), `-cache` (placement cache), `-qprefill`. The grid's
// `name` overrides it.
std::string kv_label(const KvSpec& spec);

// Assumptions behind effective_bits (see docs/grid.md): scales and zero points are
// fp16; a per_token row spans one head (head_dim elements); per_channel statistics are
// amortized over context_tokens; per_tensor overhead is negligible; residual tokens,
// protected layers and outlier channels cost 16 bits per element.
struct EffectiveBitsOptions {
  int head_dim = 128;         // elements per per_token row (one KV head)
  int context_tokens = 2048;  // sequence length that per_channel scales and residual windows amortize over
  int layers = 32;            // used when the model's layer count is unknown
};

// Average bits per cached K/V element, payload plus scale/zero-point overhead, with the
// kept-exact fraction at 16 bits. 16 for `none`.
double effective_bits(const KvSpec& spec, const EffectiveBitsOptions& options = {});

}  // namespace kvsafe::orchestrator
