// Corrupt, truncated and hostile GGUF files: every header field of stories260K.gguf mutated
// in turn must give a ModelFileError naming the file, the key or tensor, and the byte
// offset (field offsets below were read off the pinned file, sha256 270cba1b...).

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>

#include "modelfile/gguf_reader.h"
#include "tests/engine/weights_test_util.h"

namespace kvsafe::engine {
namespace {

using test::expect_model_file_error;
using test::put;

const std::vector<std::byte>& stories_bytes() {
  static const std::vector<std::byte> bytes = test::read_bytes(test::stories_gguf());
  return bytes;
}

std::size_t find_text(const std::vector<std::byte>& bytes, std::string_view text) {
  const auto* begin = reinterpret_cast<const char*>(bytes.data());
  const std::string_view all(begin, bytes.size());
  const auto at = all.find(text);
  EXPECT_NE(at, std::string_view::npos) << text;
  return at;
}

struct Mutation {
  std::string label;
  std::function<void(std::vector<std::byte>&)> mutate;
  std::vector<std::string> expected;  // substrings of the error text
};

void PrintTo(const Mutation& m, std::ostream* os) {
  *os << m.label;
}

constexpr std::uint64_t kHuge = 1ULL << 62;

std::vector<Mutation> header_mutations() {
  return {
      {"bad_magic",
       [](auto& b) { put<std::uint32_t>(b, 0, 0x58554747); },
       {"header 'magic'", "not a GGUF file", "(at byte 0)"}},
      {"version_1",
       [](auto& b) { put<std::uint32_t>(b, 4, 1); },
       {"header 'version'", "unsupported GGUF version 1", "(at byte 4)"}},
      {"version_4",
       [](auto& b) { put<std::uint32_t>(b, 4, 4); },
       {"header 'version'", "unsupported GGUF version 4", "(at byte 4)"}},
      {"big_endian",
       [](auto& b) { put<std::uint32_t>(b, 4, 0x03000000); },
       {"header 'version'", "big-endian", "(at byte 4)"}},
      {"huge_tensor_count",
       [](auto& b) { put<std::uint64_t>(b, 8, kHuge); },
       {"header 'tensor_count'", "cannot fit", "(at byte 8)"}},
      {"huge_kv_count",
       [](auto& b) { put<std::uint64_t>(b, 16, kHuge); },
       {"header 'metadata_kv_count'", "cannot fit", "(at byte 16)"}},
      {"huge_key_length",
       [](auto& b) { put<std::uint64_t>(b, 24, kHuge); },
       {"metadata key #0", "exceeds", "(at byte 24)"}},
      {"key_length_past_end",
       [](auto& b) { put<std::uint64_t>(b, 24, 1185376 - 30); },
       {"metadata key #0", "exceeds", "(at byte 24)"}},
      {"unknown_value_type",
       [](auto& b) { put<std::uint32_t>(b, 53, 99); },
       {"key 'tokenizer.ggml.tokens'", "unknown value type 99", "(at byte 53)"}},
      {"unknown_array_element_type",
       [](auto& b) { put<std::uint32_t>(b, 57, 13); },
       {"key 'tokenizer.ggml.tokens'", "unknown array element type 13", "(at byte 57)"}},
      {"huge_array_count",
       [](auto& b) { put<std::uint64_t>(b, 61, kHuge); },
       {"key 'tokenizer.ggml.tokens'", "array of", "(at byte 61)"}},
      {"array_count_past_end",
       [](auto& b) { put<std::uint64_t>(b, 61, 200000); },
       {"key 'tokenizer.ggml.tokens'", "array of 200000 string", "(at byte 61)"}},
      {"huge_string_in_array",
       [](auto& b) { put<std::uint64_t>(b, 69, kHuge); },
       {"key 'tokenizer.ggml.tokens'", "string length", "(at byte 69)"}},
      {"nested_array_bomb",
       [](auto& b) {  // scores become an array of 512 arrays: each reads garbage
         put<std::uint32_t>(b, 6503, 9);
       },
       {"key 'tokenizer.ggml.scores'"}},
      {"duplicate_key",
       [](auto& b) { b[10877 + 8 + 15] = std::byte{'b'}; },  // eos -> bos
       {"key 'tokenizer.ggml.bos_token_id'", "duplicate key", "(at byte 10877)"}},
      {"empty_key",
       [](auto& b) { put<std::uint64_t>(b, 10705, 0); },
       {"metadata key #4", "empty key", "(at byte 10705)"}},
      {"alignment_not_power_of_two",
       [](auto& b) {  // llama.block_count (17 bytes) -> general.alignment = 5
         std::memcpy(b.data() + 11218 + 8, "general.alignment", 17);
       },
       {"key 'general.alignment'", "alignment 5 is not a power of two", "(at byte 11243)"}},
      {"alignment_wrong_type",
       [](auto& b) {
         std::memcpy(b.data() + 11218 + 8, "general.alignment", 17);
         put<std::uint32_t>(b, 11243, 6);  // float32
       },
       {"key 'general.alignment'", "expected an integer", "(at byte 11243)"}},
      {"n_dims_5",
       [](auto& b) { put<std::uint32_t>(b, 11372, 5); },
       {"tensor 'token_embd.weight'", "n_dims is 5", "(at byte 11372)"}},
      {"unknown_ggml_type",
       [](auto& b) { put<std::uint32_t>(b, 11392, 99); },
       {"tensor 'token_embd.weight'", "unknown ggml type id 99", "(at byte 11392)"}},
      {"removed_ggml_type_4",
       [](auto& b) { put<std::uint32_t>(b, 11392, 4); },
       {"tensor 'token_embd.weight'", "unknown ggml type id 4", "(at byte 11392)"}},
      {"row_not_block_multiple",
       [](auto& b) { put<std::uint32_t>(b, 11392, 12); },  // q4_K, 64 % 256
       {"tensor 'token_embd.weight'", "not a multiple of the q4_K block size 256", "(at byte 11376)"}},
      {"type_larger_than_data",
       [](auto& b) { put<std::uint32_t>(b, 11392, 28); },  // f64: 2x bytes
       {"tensor 'token_embd.weight'", "overlaps tensor 'output_norm.weight'", "(at byte 14176)"}},
      {"offset_past_end",
       [](auto& b) { put<std::uint64_t>(b, 11396, 1ULL << 40); },
       {"tensor 'token_embd.weight'", "past the end of the file", "(at byte 11396)"}},
      {"offset_near_uint64_max",
       [](auto& b) { put<std::uint64_t>(b, 11396, ~std::uint64_t{31}); },
       {"tensor 'token_embd.weight'", "past the end of the file", "(at byte 11396)"}},
      {"misaligned_data_offset",
       [](auto& b) { put<std::uint64_t>(b, 11396, 4); },
       {"tensor 'token_embd.weight'", "not a multiple of the alignment 32", "(at byte 11396)"}},
      {"last_tensor_past_end",
       [](auto& b) { put<std::uint64_t>(b, 11499, 131328 + 1185376); },
       {"tensor 'output.weight'", "past the end", "(at byte 11499)"}},
      {"shape_product_overflow",
       [](auto& b) {
         put<std::uint64_t>(b, 11376, 1ULL << 40);
         put<std::uint64_t>(b, 11384, 1ULL << 40);
       },
       {"tensor 'token_embd.weight'", "shape overflows", "(at byte 11384)"}},
      {"shape_larger_than_file",
       [](auto& b) {
         put<std::uint64_t>(b, 11376, 1ULL << 31);
         put<std::uint64_t>(b, 11384, 1ULL << 31);
       },
       {"tensor 'token_embd.weight'", "more bytes than the whole file", "(at byte 11372)"}},
      {"negative_dimension",
       [](auto& b) { put<std::uint64_t>(b, 11376, ~std::uint64_t{0}); },
       {"tensor 'token_embd.weight'", "dimension 0 is", "out of range", "(at byte 11376)"}},
      {"duplicate_tensor_name",
       [](auto& b) {  // blk.0.attn_k.weight -> blk.0.attn_q.weight
         const auto at = find_text(b, "blk.0.attn_k.weight");
         b[at + 11] = std::byte{'q'};
       },
       {"tensor 'blk.0.attn_q.weight'", "duplicate tensor name"}},
      {"huge_tensor_name",
       [](auto& b) { put<std::uint64_t>(b, 11347, kHuge); },
       {"tensor info #0 name", "(at byte 11347)"}},
  };
}

class GgufCorrupt : public ::testing::TestWithParam<Mutation> {};

TEST_P(GgufCorrupt, GivesDocumentedError) {
  auto bytes = stories_bytes();
  GetParam().mutate(bytes);
  const std::string name = "mutated_" + GetParam().label + ".gguf";
  try {
    (void)GgufFile::from_bytes(std::move(bytes), name);
    ADD_FAILURE() << "no ModelFileError";
  } catch (const ModelFileError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(name), std::string::npos) << what;
    for (const auto& part : GetParam().expected) {
      EXPECT_NE(what.find(part), std::string::npos) << "missing '" << part << "' in: " << what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(HeaderFields, GgufCorrupt, ::testing::ValuesIn(header_mutations()),
                         [](const auto& p) { return p.param.label; });

TEST(GgufTruncated, EveryTruncationIsATypedErrorWithOffset) {
  const auto& full = stories_bytes();
  std::vector<std::size_t> cuts = {0,
                                   1,
                                   3,
                                   4,
                                   7,
                                   8,
                                   15,
                                   16,
                                   23,
                                   24,
                                   31,
                                   40,
                                   56,
                                   57,
                                   60,
                                   61,
                                   68,
                                   69,
                                   75,
                                   6000,
                                   6470,
                                   6503,
                                   8600,
                                   10700,
                                   10870,
                                   11300,
                                   11346,
                                   11347,
                                   11360,
                                   11372,
                                   11380,
                                   11392,
                                   11396,
                                   11403,
                                   11404,
                                   12000,
                                   14175,
                                   14176,
                                   14177,
                                   100000,
                                   full.size() - 1};
  for (std::size_t cut = 0; cut < full.size(); cut += 4099) cuts.push_back(cut);
  for (const std::size_t cut : cuts) {
    SCOPED_TRACE(cut);
    std::vector<std::byte> bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
    expect_model_file_error([&] { (void)GgufFile::from_bytes(std::move(bytes), "cut.gguf"); },
                            {"cut.gguf: ", "(at byte "});
  }
  // Cut inside the tensor data: the error names the first tensor that no longer fits.
  std::vector<std::byte> bytes(full.begin(), full.begin() + 14176 + 131072 + 100);
  expect_model_file_error([&] { (void)GgufFile::from_bytes(std::move(bytes), "cut.gguf"); },
                          {"tensor 'output_norm.weight'", "past the end", "(at byte 11446)"});
  std::vector<std::byte> header_only(full.begin(), full.begin() + 30);
  expect_model_file_error([&] { (void)GgufFile::from_bytes(std::move(header_only), "cut.gguf"); },
                          {"header 'tensor_count'", "cannot fit", "(at byte 8)"});
}

TEST(GgufTruncated, OpenFromDiskNamesThePath) {
  const auto dir = test::scratch_dir("truncated");
  const auto path = dir / "short.gguf";
  const auto& full = stories_bytes();
  test::write_bytes(path, std::vector<std::byte>(full.begin(), full.begin() + 11400));
  expect_model_file_error([&] { (void)GgufFile::open(path); },
                          {path.string(), "tensor 'token_embd.weight'", "(at byte "});
  expect_model_file_error([&] { (void)GgufFile::open(dir / "absent.gguf"); }, {"absent.gguf", "cannot open"});
  std::filesystem::remove_all(dir);
}

// Every single-byte change in the metadata tail and the first tensor infos either parses or
// throws ModelFileError: never another exception, a crash or a hang.
TEST(GgufMutationSweep, SingleByteChangesNeverEscape) {
  const auto& full = stories_bytes();
  std::size_t errors = 0, parsed = 0;
  for (std::size_t at = 10660; at < 11620; ++at) {
    for (const std::uint8_t value : {0x00, 0xFF, 0x80}) {
      auto bytes = full;
      if (bytes[at] == std::byte{value}) continue;
      bytes[at] = std::byte{value};
      try {
        (void)GgufFile::from_bytes(std::move(bytes), "sweep.gguf");
        ++parsed;
      } catch (const ModelFileError&) {
        ++errors;
      }
    }
  }
  EXPECT_GT(errors, 100U);
  EXPECT_GT(parsed, 100U);
}

}  // namespace
}  // namespace kvsafe::engine
