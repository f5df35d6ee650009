#pragma once
// kernels::KvQuantSpec: one KV-cache quantizer, the single spec type of kvsafe (the grid,
// the CLI's --kv flag, the engine and the database all use it). Torch-free: the
// orchestrator includes this header and links only kvsafe_kernels_spec.
//
// A spec has three forms that round-trip:
//  - the struct (C++ call sites: KvQuantSpec{.scheme = KvScheme::kInt, .bits = 4});
//  - canonical JSON (sorted keys, no whitespace), whose SHA-256 is the stable hash and
//    which cell ids hash (orchestrator/cell_identity.h). Keys added after the grid
//    language shipped are written only when they differ from their default, so every
//    spec the first grid language could express keeps its JSON, hash and cell ids;
//  - the short label (`int4-ptok-asym`, `kivi2-r128`, `int4-ptok-asym+fp16[0,2]`),
//    parsed by parse_kv_label (the CLI's `--kv`). Grammar in kv_label() below.
//
// Validation is in one place, validate_kv_spec(): the grid parser maps each problem's key
// to a YAML line:col, the CLI prints it, resolve_side() refuses an invalid spec.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvsafe::kernels {

// kNone: full precision. kInt: uniform integer (paper or serving formulas by placement).
// kKivi: KIVI (keys per channel over token groups, values per token in channel groups,
// asymmetric, full-precision residual). kFp8*: vLLM FP8 KV cache. kQ*: llama.cpp cache types
// (blocks of 32 along head_dim, ggml formulas).
enum class KvScheme { kNone, kInt, kFp8E4M3, kFp8E5M2, kKivi, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1 };
enum class Granularity { kPerToken, kPerChannel, kPerGroup, kPerTensor };
// projection: fake-quantize the k/v projection outputs as the paper's hooks do.
// cache: serving systems: a packed cache, statistics per sequence and KV head.
enum class Placement { kProjection, kCache };
enum class PrefillAttention { kExact, kQuantized };
// FP8 scale: 1.0 (vLLM's default, what the paper tested) or calibrated once from the first
// forward as max|x|/200 (keys) and max|x|/100 (values), then frozen (vLLM calculate_kv_scales).
enum class Fp8ScaleSource { kUnit, kCalibrated };
enum class KvSide { kKey, kValue };

std::string_view to_string(KvScheme scheme);  // "none", "int", "fp8_e4m3", "kivi", "q8_0", ...
std::string_view to_string(Granularity granularity);
std::string_view to_string(Placement placement);
std::string_view to_string(PrefillAttention prefill);
std::string_view to_string(Fp8ScaleSource source);  // "unit" | "calibrated"
std::optional<KvScheme> parse_kv_scheme(std::string_view text);
std::optional<Granularity> parse_granularity(std::string_view text);
std::optional<Placement> parse_placement(std::string_view text);
std::optional<PrefillAttention> parse_prefill_attention(std::string_view text);
std::optional<Fp8ScaleSource> parse_fp8_scale_source(std::string_view text);
// Every scheme name, in enum order (for "expected one of" messages).
const std::vector<std::string_view>& kv_scheme_names();

// KIVI's published configuration (Liu et al. 2024): keys and values in groups of 32, the
// latest 128 tokens kept in full precision. The grid's defaults and the labels' implied values.
inline constexpr int kKiviDefaultGroupSize = 32;
inline constexpr int kKiviDefaultResidual = 128;

bool is_llama_cpp(KvScheme scheme);  // q8_0 .. q5_1
bool is_fp8(KvScheme scheme);
// Payload bits of a fixed-width scheme (fp8 8, q8_0 8, q4_* 4, q5_* 5); 0 for int/kivi/none.
int fixed_bits(KvScheme scheme);

// Channels kept exact: a count (the largest calibration magnitudes per layer and head,
// chosen at run time) or an explicit list of channel ids.
struct OutlierChannels {
  int count = 0;                // used when !explicit_list
  std::vector<int> channels{};  // sorted, unique; used when explicit_list
  bool explicit_list = false;

  int kept() const { return explicit_list ? static_cast<int>(channels.size()) : count; }
  bool operator==(const OutlierChannels&) const = default;
};

// A different quantizer on some layers: "protect layers 0 and 2 in fp16" is
// protect_layers; "8-bit on layers 10-15" or "per-channel on the critical layer" is a rule.
// The rule replaces scheme, bits, symmetry and granularities on its layers; everything
// else (placement, residual, outliers) stays the spec's.
struct KvLayerRule {
  std::vector<int> layers{};  // sorted, unique, non-empty
  KvScheme scheme = KvScheme::kInt;
  int bits = 8;
  bool symmetric = false;
  Granularity key_granularity = Granularity::kPerToken;
  Granularity value_granularity = Granularity::kPerToken;
  int group_size = 0;

  bool operator==(const KvLayerRule&) const = default;
};

struct KvQuantSpec {
  KvScheme scheme = KvScheme::kNone;
  int bits = 16;                                                  // 2..8 for int/kivi (key side); 16 = none
  bool symmetric = false;                                         // int only (key side)
  Granularity key_granularity = Granularity::kPerToken;           // int only
  Granularity value_granularity = Granularity::kPerToken;         // int only
  int group_size = 0;                                             // >0 iff used (per_group side, or kivi)
  Placement placement = Placement::kProjection;                   // projection = the paper's hooks
  PrefillAttention prefill_attention = PrefillAttention::kExact;  // meaningful with placement cache
  int residual = 0;                                               // full-precision recent-token window
  std::vector<int> protect_layers{};                              // kept at fp16; sorted, unique
  OutlierChannels outliers{};
  std::string name{};  // label override from the grid; not part of the identity

  // Added with the kernels (JSON keys written only when not default: ids stay stable).
  int value_bits = 0;                                // int/kivi value side; 0 = same as bits
  std::optional<bool> value_symmetric{};             // int value side; unset = same as symmetric
  int value_group_size = 0;                          // value side; 0 = same as group_size
  std::vector<int> layers{};                         // layers quantized at all; empty = every layer
  std::vector<KvLayerRule> layer_rules{};            // per-layer quantizers, disjoint layers
  std::vector<int> quantize_channels{};              // only these channels quantized (stats over them); empty = all
  Fp8ScaleSource fp8_scale = Fp8ScaleSource::kUnit;  // fp8 only
  bool pre_rope = false;                             // placement cache: quantize keys before RoPE
  bool fp32_scales = false;                          // packed scales/zeros in fp32 instead of fp16

  bool operator==(const KvQuantSpec&) const = default;
};

// One problem with a spec: the key it is about (a JSON/grid key: "bits", "group_size",
// "value_bits", ...; "scheme" for combinations) and a message that says what is wrong.
struct KvSpecProblem {
  std::string key{};
  std::string message{};
};

// Every rule a spec must satisfy, checked on the spec as given (before canonicalize):
// bits 2..8 (or 16 = none) for int, 2..8 for kivi; per_group needs group_size >= 1;
// group_size without per_group (int) is unused; prefill_attention quantized needs
// placement cache; residual >= 0; layer and channel ids >= 0; layer rules valid and
// disjoint from each other and from protect_layers; fp8 scale calibrated only for fp8.
// Empty when valid. (pre_rope with placement projection is not an error: canonicalize clears
// it, since projection outputs are pre-RoPE by construction.)
std::vector<KvSpecProblem> validate_kv_spec(const KvQuantSpec& spec);
// Throws InputError naming the first problem ("invalid KV spec `label`: key: message").
void check_kv_spec(const KvQuantSpec& spec);

// The canonical form: scheme-irrelevant fields reset to their neutral value, int 16-bit
// turned into `none`, fixed-width schemes' bits set, value-side overrides equal to the key
// side dropped, lists sorted and unique, none-rules merged into protect_layers. Two specs
// that quantize the same way canonicalize equal (the name is kept as is).
KvQuantSpec canonicalize(KvQuantSpec spec);

// Sorted-key, whitespace-free JSON of canonicalize(spec) without the name.
std::string canonical_json(const KvQuantSpec& spec);
// Every key of the JSON form (canonical_json, kv_spec_from_json), in the order the grid
// language sweeps them. The grid's kv_cache entries accept these plus their own `granularity`
// (both sides at once), `name` and `zip` (orchestrator/kv_entry_schema.cpp): one list, so a
// new spec field cannot be readable from JSON but unknown to grids, or the other way round.
std::span<const std::string_view> kv_spec_json_keys();
// Parses canonical_json's output (and hand-written JSON with the same keys; unknown keys
// and bad values throw InputError naming the key). The result is canonicalized.
KvQuantSpec kv_spec_from_json(std::string_view json);
// Lower-case hex SHA-256 of canonical_json(spec): the stable hash.
std::string kv_spec_hash(const KvQuantSpec& spec);

// Short label:
//   none | int<b>[v<b>]-<gran>-<sym|asym>[v<sym|asym>] | kivi<b>[v<b>][-g<G>] | fp8e4m3 | fp8e5m2
//   | q8_0 | q4_0 | q4_1 | q5_0 | q5_1
// where <gran> is ptok | pchan | ptensor | g<G>, or k<gran>-v<gran> when keys and values
// differ (value group size `vg<G>` may differ from the key's); then the suffixes, in order:
// -r<N> (residual; kivi always), -cal (fp8 calibrated scale), -cache (placement cache),
// -qprefill, -prerope, -fp32s (fp32 scales), @[layers] (layers quantized),
// +fp16[layers] (protected), +<rule label>[layers] per rule, +out<N> or +out[ids] (outliers
// kept exact), +ch[ids] (only these channels quantized). Layer lists accept ranges (`10-15`)
// when parsed. The grid's `name` overrides the label.
std::string kv_label(const KvQuantSpec& spec);
// Parses a label (the inverse of kv_label on canonical specs); throws InputError naming
// the part it could not read. The result is validated and canonicalized.
KvQuantSpec parse_kv_label(std::string_view label);
// One layer rule in label syntax, `int8-ptok-asym[10-15]`, `q8_0[3]`, `fp16[0,2]` (the
// grid's layer_rules entries); throws InputError. Not validated (the spec's check does).
KvLayerRule parse_kv_layer_rule(std::string_view text);

// Assumptions behind effective_bits (docs/grid.md): scales and zero points are fp16 (fp32
// with fp32_scales); a per_token row spans one head (head_dim elements); per_channel
// statistics are amortized over context_tokens; per_tensor overhead is negligible;
// residual tokens, protected layers, unquantized layers and outlier channels cost 16 bits.
struct EffectiveBitsOptions {
  int head_dim = 128;         // elements per per_token row (one KV head)
  int context_tokens = 2048;  // sequence length that per_channel scales and residual windows amortize over
  int layers = 32;            // used when the model's layer count is unknown
};

// Average bits per cached K/V element: payload + scales + zero points, with the kept-exact
// fraction at 16 bits. 16 for `none`.
double effective_bits(const KvQuantSpec& spec, const EffectiveBitsOptions& options = {});

// What one side (keys or values) of one layer does: the spec resolved for the kernels.
struct KvSideSpec {
  KvScheme scheme = KvScheme::kNone;  // kNone: this side of this layer stays exact
  int bits = 16;
  bool symmetric = false;
  Granularity granularity = Granularity::kPerToken;
  int group_size = 0;
  Placement placement = Placement::kProjection;
  int residual = 0;
  Fp8ScaleSource fp8_scale = Fp8ScaleSource::kUnit;
  bool fp32_scales = false;
  bool pre_rope = false;
  OutlierChannels outliers{};
  std::vector<int> quantize_channels{};  // empty = all
  // The paper's KIVI variant (projection placement): keys of a single-token call fall back
  // to per_token.
  bool single_token_per_token = false;

  bool operator==(const KvSideSpec&) const = default;
};

// Resolves `spec` for `side` of `layer` (protect_layers, layers, layer rules, value-side
// overrides; kivi with placement projection = the paper's KVQuantizerDual: keys per_channel
// asym, values per_group(group_size) asym). Throws InputError if the spec is invalid.
KvSideSpec resolve_side(const KvQuantSpec& spec, KvSide side, int layer);

}  // namespace kvsafe::kernels
