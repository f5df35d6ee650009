// SmolLM2-135M-Instruct (Q4_1 GGUF from scripts/fetch-model): tensor names, types, shapes and
// offsets as its header says, cross-checked with the `gguf` package's reading of the same
// file (tests/engine/fixtures/weights_smollm2_listing.json, written by
// tests/oracles/weights_dequant_oracle.py), and bit-exact dequantization of a few tensors.
// Label `model`; skipped when the file is not in the model cache.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <cstring>
#include <fstream>

#include "common/sha256.h"
#include "modelfile/gguf_reader.h"
#include "modelfile/weights_loader.h"
#include "tests/engine/weights_test_util.h"
#include "tests/testing/model_files.h"

namespace kvsafe::engine {
namespace {

std::filesystem::path smollm2_path() {
  return kvsafe::testing::smollm2_gguf_path();
}

class SmolLM2 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(smollm2_path())) {
      GTEST_SKIP() << "SmolLM2 GGUF not found at " << smollm2_path()
                   << "; run scripts/fetch-model (or set KVSAFE_MODEL_CACHE)";
    }
    std::ifstream in(test::fixture("weights_smollm2_listing.json"));
    listing_ = nlohmann::json::parse(in);
  }
  nlohmann::json listing_;
};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

TEST_F(SmolLM2, HeaderMatchesTheGgufPackage) {
  const auto f = GgufFile::open(smollm2_path());
  EXPECT_EQ(f->version(), listing_["version"].get<std::uint32_t>());
  EXPECT_EQ(f->metadata_count(), listing_["n_kv"].get<std::size_t>());
  EXPECT_EQ(f->alignment(), listing_["alignment"].get<std::uint64_t>());
  EXPECT_EQ(f->data_offset(), listing_["data_offset"].get<std::uint64_t>());
  // general.file_type says Q4_1 (3); the tensors are Q4_1, Q8_0 and F32, each read by its own type.
  EXPECT_EQ(f->get_int("general.file_type"), listing_["general.file_type"].get<std::int64_t>());
  const auto& want = listing_["tensors"];
  ASSERT_EQ(f->tensors().size(), want.size());
  std::map<std::string, int> type_counts;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const auto& t = f->tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, want[i]["name"].get<std::string>());
    EXPECT_EQ(upper(to_string(t.type)), want[i]["type"].get<std::string>());
    EXPECT_EQ(t.dims, want[i]["dims"].get<std::vector<std::int64_t>>());
    EXPECT_EQ(t.offset, want[i]["offset"].get<std::uint64_t>());
    EXPECT_EQ(t.n_elements, want[i]["n_elements"].get<std::uint64_t>());
    ++type_counts[upper(to_string(t.type))];
  }
  EXPECT_EQ(type_counts["Q4_1"], 210);
  EXPECT_EQ(type_counts["Q8_0"], 1);
  EXPECT_EQ(type_counts["F32"], 61);
}

TEST_F(SmolLM2, DequantizationBitExact) {
  const auto f = GgufFile::open(smollm2_path());
  for (const auto& [name, hash] : listing_["dequantized_f32_sha256"].items()) {
    SCOPED_TRACE(name);
    const auto values = f->dequantize(f->tensor(name));
    EXPECT_EQ(sha256_hex(std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float))),
              hash.get<std::string>());
  }
}

TEST_F(SmolLM2, StoredBlocksDequantizeToWhatLoadReturns) {
  // load_blocks() hands the engine the blocks it keeps quantized (engine/quantized_panels.h):
  // their rows must be load()'s rows, the Q and K rows un-permuted from ggml's RoPE order.
  const auto w = WeightsLoader::open(smollm2_path());
  for (const char* name : {"model.layers.0.self_attn.q_proj.weight", "model.layers.3.self_attn.k_proj.weight",
                           "model.layers.0.self_attn.v_proj.weight", "model.layers.29.mlp.down_proj.weight",
                           "model.embed_tokens.weight"}) {
    SCOPED_TRACE(name);
    const auto blocks = w->load_blocks(name);
    ASSERT_TRUE(blocks.has_value());
    const auto& info = w->info(name);
    EXPECT_EQ(to_string(blocks->type), info.stored_type);
    EXPECT_EQ(blocks->rows, static_cast<std::uint64_t>(info.shape[0]));
    EXPECT_EQ(blocks->row_len, static_cast<std::uint64_t>(info.shape[1]));
    std::vector<float> from_blocks(info.n_elements);
    dequantize_to_float(blocks->type, blocks->bytes, from_blocks);
    const auto loaded = w->load(name);
    EXPECT_EQ(std::memcmp(from_blocks.data(), loaded.data(), loaded.size() * sizeof(float)), 0);
  }
  EXPECT_THROW(w->load_blocks("model.layers.0.no_such.weight"), ModelFileError);
}

TEST_F(SmolLM2, ModelConfigAndLayout) {
  const auto w = WeightsLoader::open(smollm2_path());
  const ModelConfig& c = w->config();
  EXPECT_EQ(c.family, ModelFamily::kLlama);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.num_layers, 30);
  EXPECT_EQ(c.num_heads, 9);
  EXPECT_EQ(c.num_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_TRUE(c.tie_word_embeddings);  // no output.weight in the file
  EXPECT_EQ(w->find("lm_head.weight"), nullptr);
  EXPECT_EQ(w->tensor_names().size(), 272U);
  const auto& q = w->info("model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(q.shape, (std::vector<std::int64_t>{576, 576}));
  EXPECT_EQ(q.stored_type, "q4_1");
  EXPECT_EQ(w->info("model.layers.0.self_attn.k_proj.weight").shape, (std::vector<std::int64_t>{192, 576}));
  EXPECT_EQ(w->info("model.embed_tokens.weight").stored_type, "q8_0");
  // Q/K come back un-permuted: head h, row j*32+i of the loaded tensor = stored row 2i+j.
  const auto f = GgufFile::open(smollm2_path());
  const auto raw = f->dequantize(f->tensor("blk.0.attn_k.weight"));
  const auto loaded = w->load("model.layers.0.self_attn.k_proj.weight");
  for (int h = 0; h < 3; ++h)
    for (int i = 0; i < 32; ++i)
      for (int j = 0; j < 2; ++j)
        for (int col : {0, 575}) {
          EXPECT_EQ(loaded[static_cast<std::size_t>((h * 64 + j * 32 + i) * 576 + col)],
                    raw[static_cast<std::size_t>((h * 64 + 2 * i + j) * 576 + col)]);
        }
}

}  // namespace
}  // namespace kvsafe::engine
