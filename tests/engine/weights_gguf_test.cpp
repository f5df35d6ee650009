// GGUF reader and block dequantization against independent oracles: the facts in
// ../shared/models/stories260K/PROVENANCE.md, and fixtures written by the `gguf` Python
// package (tests/oracles/weights_dequant_oracle.py), compared bit for bit.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <fstream>
#include <set>

#include "common/sha256.h"
#include "modelfile/gguf_dequantize.h"
#include "modelfile/gguf_reader.h"
#include "tests/engine/weights_test_util.h"

namespace kvsafe::engine {
namespace {

using test::expect_model_file_error;
using test::fixture;
using test::stories_gguf;

TEST(GgufStories260K, HeaderMatchesProvenance) {
  EXPECT_EQ(sha256_file_hex(stories_gguf()), "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
  const auto f = GgufFile::open(stories_gguf());
  EXPECT_EQ(f->version(), 3U);
  EXPECT_EQ(f->metadata_count(), 19U);
  EXPECT_EQ(f->tensors().size(), 48U);
  EXPECT_EQ(f->alignment(), 32U);  // no general.alignment key: the default
  EXPECT_FALSE(f->has("general.alignment"));
  EXPECT_EQ(f->data_offset(), 14176U);
  EXPECT_EQ(f->file_size(), 1185376U);
  for (const auto& t : f->tensors()) EXPECT_EQ(t.type, GgmlType::kF32) << t.name;
}

TEST(GgufStories260K, MetadataValues) {
  const auto f = GgufFile::open(stories_gguf());
  EXPECT_EQ(f->architecture(), "llama");
  EXPECT_EQ(f->get_int("llama.block_count"), 5);
  EXPECT_EQ(f->get_int("llama.embedding_length"), 64);
  EXPECT_EQ(f->get_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(f->get_int("llama.attention.head_count"), 8);
  EXPECT_EQ(f->get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(f->get_int("llama.rope.dimension_count"), 8);
  EXPECT_EQ(f->get_int("llama.context_length"), 2048);
  EXPECT_FLOAT_EQ(static_cast<float>(*f->get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_FALSE(f->get_float("llama.rope.freq_base").has_value());
  EXPECT_FALSE(f->has("general.file_type"));
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f->get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f->get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(f->get_int("tokenizer.ggml.unknown_token_id"), 0);
  // 0xFFFFFFFF = unset, found through the legacy misspelling "seperator".
  EXPECT_TRUE(f->has("tokenizer.ggml.separator_token_id"));
  EXPECT_FALSE(f->get_int("tokenizer.ggml.separator_token_id").has_value());
  EXPECT_FALSE(f->get_int("tokenizer.ggml.padding_token_id").has_value());
  const auto tokens = f->get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512U);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[2], "</s>");
  EXPECT_EQ(tokens[3 + 0x41], "<0x41>");
  EXPECT_EQ(f->get_float_array("tokenizer.ggml.scores").size(), 512U);
  const auto types = f->get_int_array("tokenizer.ggml.token_type");
  ASSERT_EQ(types.size(), 512U);
  EXPECT_EQ(types[0], 2);  // unknown
  EXPECT_EQ(types[1], 3);  // control
  EXPECT_EQ(types[3], 6);  // byte
  EXPECT_TRUE(f->get_string_array("absent.key").empty());
  // A present key of the wrong type names the key and its offset.
  expect_model_file_error(
      [&] { (void)f->get_string("llama.block_count"); },
      {"stories260K.gguf", "key 'llama.block_count'", "expected a string", "found uint32", "(at byte 11243)"});
  expect_model_file_error([&] { (void)f->get_int_array("tokenizer.ggml.tokens"); },
                          {"key 'tokenizer.ggml.tokens'", "array of string", "(at byte 53)"});
}

TEST(GgufStories260K, TensorInfos) {
  const auto f = GgufFile::open(stories_gguf());
  const auto& embd = f->tensor("token_embd.weight");
  EXPECT_EQ(embd.dims, (std::vector<std::int64_t>{64, 512}));
  EXPECT_EQ(embd.shape(), (std::vector<std::int64_t>{512, 64}));
  EXPECT_EQ(embd.offset, 0U);
  EXPECT_EQ(f->tensor("output_norm.weight").offset, 131072U);
  EXPECT_EQ(f->tensor("output.weight").offset, 131328U);
  EXPECT_EQ(f->tensor("blk.0.attn_q.weight").dims, (std::vector<std::int64_t>{64, 64}));
  EXPECT_EQ(f->tensor("blk.0.attn_k.weight").dims, (std::vector<std::int64_t>{64, 32}));
  EXPECT_EQ(f->tensor("blk.4.ffn_gate.weight").dims, (std::vector<std::int64_t>{64, 172}));
  EXPECT_EQ(f->find_tensor("nope"), nullptr);
  expect_model_file_error([&] { (void)f->tensor("nope"); }, {"tensor 'nope'", "no such tensor"});
  // F32 dequantization is the raw bytes at data_offset + offset.
  const auto bytes = test::read_bytes(stories_gguf());
  const auto values = f->dequantize(f->tensor("output_norm.weight"));
  ASSERT_EQ(values.size(), 64U);
  float first = 0;
  std::memcpy(&first, bytes.data() + 14176 + 131072, 4);
  EXPECT_EQ(std::bit_cast<std::uint32_t>(values[0]), std::bit_cast<std::uint32_t>(first));
}

// ---- block formats vs the gguf package ----

struct Expected {
  nlohmann::json listing;
  std::vector<float> values;
};

Expected load_expected() {
  Expected e;
  std::ifstream json_in(fixture("weights_blocks_expected.json"));
  e.listing = nlohmann::json::parse(json_in);
  const auto bytes = test::read_bytes(fixture("weights_blocks_expected.bin"));
  e.values.resize(bytes.size() / 4);
  std::memcpy(e.values.data(), bytes.data(), bytes.size());
  return e;
}

TEST(GgufBlockFormats, DequantizeBitExactAgainstGgufPackage) {
  const Expected expected = load_expected();
  const auto f = GgufFile::open(fixture("weights_blocks.gguf"));
  EXPECT_EQ(f->alignment(), 64U);
  EXPECT_EQ(f->data_offset() % 64, 0U);
  std::set<std::string> types_seen;
  for (const auto& [name, entry] : expected.listing["tensors"].items()) {
    SCOPED_TRACE(name);
    const GgufTensorInfo& t = f->tensor(name);
    EXPECT_EQ(t.dims, entry["dims"].get<std::vector<std::int64_t>>());
    std::string type_name = to_string(t.type);
    std::transform(type_name.begin(), type_name.end(), type_name.begin(), ::toupper);
    EXPECT_EQ(type_name, entry["type"].get<std::string>());
    types_seen.insert(type_name);
    const auto got = f->dequantize(t);
    const auto offset = entry["float_offset"].get<std::size_t>();
    const auto count = entry["count"].get<std::size_t>();
    ASSERT_EQ(got.size(), count);
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const auto a = std::bit_cast<std::uint32_t>(got[i]);
      const auto b = std::bit_cast<std::uint32_t>(expected.values[offset + i]);
      if (a != b && mismatches++ < 5) {
        ADD_FAILURE() << name << "[" << i << "]: got " << got[i] << " want " << expected.values[offset + i];
      }
    }
    EXPECT_EQ(mismatches, 0U);
  }
  for (const char* type : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"}) {
    EXPECT_TRUE(types_seen.contains(type)) << type;
  }
}

TEST(GgufBlockFormats, EveryMetadataValueType) {
  const auto f = GgufFile::open(fixture("weights_blocks.gguf"));
  EXPECT_EQ(f->get_int("test.u8"), 200);
  EXPECT_EQ(f->get_int("test.i8"), -100);
  EXPECT_EQ(f->get_int("test.u16"), 60000);
  EXPECT_EQ(f->get_int("test.i16"), -30000);
  EXPECT_EQ(f->get_int("test.u32"), 4000000000LL);
  EXPECT_EQ(f->get_int("test.i32"), -2000000000LL);
  EXPECT_EQ(f->get_float("test.f32"), static_cast<double>(0.1f));
  EXPECT_EQ(f->get_bool("test.bool"), true);
  EXPECT_EQ(f->get_string("test.string"), "h\xC3\xA9llo \xE2\x96\x81 world");
  EXPECT_EQ(f->get_int("test.u64"), (1LL << 40) + 3);
  EXPECT_EQ(f->get_int("test.i64"), -(1LL << 40) - 5);
  EXPECT_EQ(f->get_float("test.f64"), 2.718281828459045);
  EXPECT_EQ(f->get_int_array("test.int_array"), (std::vector<std::int64_t>{1, -2, 3}));
  EXPECT_EQ(f->get_float_array("test.float_array"), (std::vector<double>{0.5, -1.25, 3.0}));
  EXPECT_EQ(f->get_string_array("test.string_array"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f->get_int_array("test.bool_array"), (std::vector<std::int64_t>{1, 0, 1}));
  const GgufValue* nested = f->find("test.nested_array");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->element_type, GgufValueType::kArray);
  ASSERT_EQ(nested->arrays.size(), 2U);
  EXPECT_EQ(nested->arrays[0].integers, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(nested->arrays[1].integers, (std::vector<std::int64_t>{3}));
  // Legacy spellings and "unset".
  EXPECT_EQ(f->get_int("tokenizer.ggml.separator_token_id"), 7);
  EXPECT_FALSE(f->get_int("tokenizer.ggml.padding_token_id").has_value());
  EXPECT_TRUE(f->has("tokenizer.ggml.padding_token_id"));
  EXPECT_EQ(f->get_float("llama.rope.scaling.factor"), 4.0);
  // Wrong types.
  expect_model_file_error([&] { (void)f->get_bool("test.u8"); }, {"key 'test.u8'", "expected a bool"});
  expect_model_file_error([&] { (void)f->get_string_array("test.nested_array"); },
                          {"key 'test.nested_array'", "array of array"});
  expect_model_file_error([&] { (void)f->get_float("test.string"); }, {"key 'test.string'"});
}

TEST(GgufBlockFormats, HalfAndBfloatConversion) {
  EXPECT_EQ(fp16_to_float(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_float(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_float(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_TRUE(std::isinf(fp16_to_float(0x7C00)));
  EXPECT_TRUE(std::isnan(fp16_to_float(0x7E00)));
  EXPECT_EQ(std::bit_cast<std::uint32_t>(fp16_to_float(0x8000)), 0x80000000U);
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xC040), -3.0f);
  // Every half value against the IEEE 754 binary16 formula.
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_float(static_cast<std::uint16_t>(h));
    const int sign = (h >> 15) != 0 ? -1 : 1;
    const int e = static_cast<int>((h >> 10) & 0x1F);
    const int m = static_cast<int>(h & 0x3FF);
    if (e == 31) {
      EXPECT_TRUE(m == 0 ? std::isinf(f) : std::isnan(f)) << h;
      continue;
    }
    const double want = sign * (e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25));
    ASSERT_EQ(static_cast<double>(f), want) << h;
    EXPECT_EQ(std::signbit(f), sign < 0) << h;
  }
}

TEST(GgufBlockFormats, DequantizeRejectsBadSizesAndTypes) {
  std::vector<std::byte> src(18);
  std::vector<float> dst(32);
  EXPECT_NO_THROW(dequantize_to_float(GgmlType::kQ4_0, src, dst));
  std::vector<float> odd(31);
  EXPECT_THROW(dequantize_to_float(GgmlType::kQ4_0, src, odd), InputError);
  EXPECT_THROW(dequantize_to_float(GgmlType::kQ4_1, src, dst), InputError);  // needs 20 bytes
  EXPECT_THROW(dequantize_to_float(GgmlType::kQ2_K, src, dst), InputError);  // not supported
  EXPECT_FALSE(ggml_type_traits(4).has_value());                             // removed upstream
  EXPECT_FALSE(ggml_type_traits(1000).has_value());
  EXPECT_EQ(ggml_type_traits(14)->type_size, 210U);
}

}  // namespace
}  // namespace kvsafe::engine
