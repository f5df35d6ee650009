#pragma once
// ggml tensor storage types and their conversion to float. The block layouts follow
// ggml/src/ggml-common.h and the reference dequantize_row_* functions of
// ggml/src/ggml-quants.c (llama.cpp); the test suite checks every supported type bit for
// bit against the PyPI `gguf` package (tests/oracles/weights_dequant_oracle.py).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace kvsafe::engine {

// ggml_type ids as stored in a GGUF tensor info (ggml.h). Values 4 and 5 were removed
// upstream and are rejected like any other unknown id.
enum class GgmlType : std::uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

// Storage geometry of one type: `block_size` elements take `type_size` bytes.
struct GgmlTypeTraits {
  std::string_view name{};       // ggml's name: "f32", "q4_K", ...
  std::uint32_t block_size = 0;  // elements per block
  std::uint32_t type_size = 0;   // bytes per block
  bool dequantizable = false;    // dequantize_to_float() supports it
};

// The traits of a known type id, or nullopt for an id ggml does not define.
std::optional<GgmlTypeTraits> ggml_type_traits(std::uint32_t type_id);
// ggml's name of a type ("q4_K"); "type <id>" for unknown ids.
std::string to_string(GgmlType type);

// Converts `dst.size()` elements stored as `type` in `src` to float, in storage order.
// Requires dst.size() to be a multiple of the type's block size and src.size() to be
// exactly dst.size() / block_size * type_size; throws kvsafe::InputError otherwise, and
// for types that are not dequantizable. Pure function; no allocation.
void dequantize_to_float(GgmlType type, std::span<const std::byte> src, std::span<float> dst);

// IEEE half / bfloat16 bit patterns to float (exact).
float fp16_to_float(std::uint16_t bits);
float bf16_to_float(std::uint16_t bits);

}  // namespace kvsafe::engine
