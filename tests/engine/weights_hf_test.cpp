// HF config.json for every family of the paper (configs as published on the Hugging Face
// Hub, trimmed to the keys that matter), safetensors reading and its corrupt-file errors,
// and the HF-side fix-ups of WeightsLoader (Phi-3 fused splits, Gemma (1 + w) norms).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <bit>

#include "modelfile/hf_config.h"
#include "modelfile/safetensors_reader.h"
#include "modelfile/weights_loader.h"
#include "tests/engine/safetensors_test_writer.h"
#include "tests/engine/weights_test_util.h"

namespace kvsafe::engine {
namespace {

using test::expect_model_file_error;

ModelConfig parse(const std::string& json) {
  return parse_hf_config(json, "config.json");
}

TEST(HfConfig, Llama31Instruct) {
  const auto c = parse(R"({"architectures":["LlamaForCausalLM"],"attention_bias":false,
    "bos_token_id":128000,"eos_token_id":[128001,128008,128009],"hidden_act":"silu",
    "hidden_size":4096,"intermediate_size":14336,"max_position_embeddings":131072,
    "mlp_bias":false,"model_type":"llama","num_attention_heads":32,"num_hidden_layers":32,
    "num_key_value_heads":8,"pretraining_tp":1,"rms_norm_eps":1e-05,
    "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
      "original_max_position_embeddings":8192,"rope_type":"llama3"},
    "rope_theta":500000.0,"tie_word_embeddings":false,"torch_dtype":"bfloat16","vocab_size":128256})");
  EXPECT_EQ(c.family, ModelFamily::kLlama);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rotary_dim, 128);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_FALSE(c.sliding_window.has_value());
}

TEST(HfConfig, MistralSlidingWindow) {
  const std::string base = R"("architectures":["MistralForCausalLM"],"model_type":"mistral",
    "hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,"num_attention_heads":32,
    "num_key_value_heads":8,"max_position_embeddings":32768,"rms_norm_eps":1e-05,
    "vocab_size":32000,"hidden_act":"silu")";
  const auto v01 = parse("{" + base + R"(,"sliding_window":4096,"rope_theta":10000.0})");
  EXPECT_EQ(v01.family, ModelFamily::kMistral);
  EXPECT_EQ(v01.sliding_window, 4096);
  const auto v02 = parse("{" + base + R"(,"sliding_window":null,"rope_theta":1000000.0})");
  EXPECT_FALSE(v02.sliding_window.has_value());
  EXPECT_EQ(v02.rope_theta, 1e6);
  EXPECT_EQ(parse("{" + base + "}").sliding_window, 4096);  // MistralConfig default
}

TEST(HfConfig, Qwen2Bias) {
  const auto c = parse(R"({"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2",
    "hidden_act":"silu","hidden_size":3584,"intermediate_size":18944,"max_position_embeddings":32768,
    "max_window_layers":28,"num_attention_heads":28,"num_hidden_layers":28,"num_key_value_heads":4,
    "rms_norm_eps":1e-06,"rope_theta":1000000.0,"sliding_window":131072,"tie_word_embeddings":false,
    "use_sliding_window":false,"vocab_size":152064})");
  EXPECT_EQ(c.family, ModelFamily::kQwen2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.sliding_window.has_value());  // use_sliding_window: false
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
}

TEST(HfConfig, Phi3LongRope) {
  std::string factors;
  for (int i = 0; i < 48; ++i) factors += (i ? "," : "") + std::to_string(1.0 + i * 0.01);
  for (const char* type : {"longrope", "su"}) {
    const auto c = parse(std::string(R"({"architectures":["Phi3ForCausalLM"],"model_type":"phi3",
      "hidden_act":"silu","hidden_size":3072,"intermediate_size":8192,"max_position_embeddings":131072,
      "original_max_position_embeddings":4096,"num_attention_heads":32,"num_hidden_layers":32,
      "num_key_value_heads":32,"rms_norm_eps":1e-05,"rope_theta":10000.0,
      "rope_scaling":{"type":")") +
                         type + R"(","short_factor":[)" + factors + R"(],"long_factor":[)" + factors + R"(]},
      "sliding_window":262144,"tie_word_embeddings":false,"vocab_size":32064})");
    EXPECT_EQ(c.family, ModelFamily::kPhi3);
    EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kLongRope);
    EXPECT_EQ(c.rope_scaling.short_factor.size(), 48U);
    EXPECT_EQ(c.rope_scaling.long_factor.back(), 1.47);
    EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
    EXPECT_EQ(c.sliding_window, 262144);
    EXPECT_EQ(c.head_dim, 96);
  }
}

TEST(HfConfig, Gemma2) {
  const auto c = parse(R"({"architectures":["Gemma2ForCausalLM"],"model_type":"gemma2",
    "attn_logit_softcapping":50.0,"final_logit_softcapping":30.0,"head_dim":256,
    "hidden_act":"gelu_pytorch_tanh","hidden_activation":"gelu_pytorch_tanh","hidden_size":3584,
    "intermediate_size":14336,"max_position_embeddings":8192,"num_attention_heads":16,
    "num_hidden_layers":42,"num_key_value_heads":8,"query_pre_attn_scalar":256,
    "rms_norm_eps":1e-06,"rope_theta":10000.0,"sliding_window":4096,"vocab_size":256000})");
  EXPECT_EQ(c.family, ModelFamily::kGemma2);
  EXPECT_TRUE(c.tie_word_embeddings);  // Gemma2Config default
  EXPECT_EQ(c.head_dim, 256);          // not hidden/heads (224)
  EXPECT_EQ(c.attn_logit_softcapping, 50.0);
  EXPECT_EQ(c.final_logit_softcapping, 30.0);
  EXPECT_EQ(c.query_pre_attn_scalar, 256.0);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.sliding_window_pattern, 2);
  EXPECT_TRUE(c.norm_plus_one);
  EXPECT_TRUE(c.scale_embeddings);
  EXPECT_EQ(c.norm_placement, NormPlacement::kPreAndPost);
  EXPECT_EQ(c.hidden_act, "gelu_pytorch_tanh");
}

TEST(HfConfig, MixtralMoe) {
  const auto c = parse(R"({"architectures":["MixtralForCausalLM"],"model_type":"mixtral",
    "hidden_act":"silu","hidden_size":4096,"intermediate_size":14336,"max_position_embeddings":32768,
    "num_attention_heads":32,"num_experts_per_tok":2,"num_hidden_layers":32,"num_key_value_heads":8,
    "num_local_experts":8,"rms_norm_eps":1e-05,"rope_theta":1000000.0,"sliding_window":null,
    "tie_word_embeddings":false,"vocab_size":32000})");
  EXPECT_EQ(c.family, ModelFamily::kMixtral);
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.num_experts_per_token, 2);
  EXPECT_FALSE(c.sliding_window.has_value());
}

TEST(HfConfig, Olmo2) {
  const auto c = parse(R"({"architectures":["Olmo2ForCausalLM"],"model_type":"olmo2",
    "attention_bias":false,"hidden_act":"silu","hidden_size":4096,"intermediate_size":11008,
    "max_position_embeddings":4096,"num_attention_heads":32,"num_hidden_layers":32,
    "num_key_value_heads":32,"rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":500000,
    "tie_word_embeddings":false,"vocab_size":100352})");
  EXPECT_EQ(c.family, ModelFamily::kOlmo2);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.norm_placement, NormPlacement::kPost);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kNone);
}

TEST(HfConfig, DeepSeekAndYiUseTheLlamaLayout) {
  const auto deepseek = parse(R"({"architectures":["LlamaForCausalLM"],"model_type":"llama",
    "hidden_size":4096,"intermediate_size":11008,"num_hidden_layers":30,"num_attention_heads":32,
    "num_key_value_heads":32,"max_position_embeddings":4096,"rms_norm_eps":1e-06,"vocab_size":102400})");
  EXPECT_EQ(deepseek.family, ModelFamily::kLlama);
  EXPECT_EQ(deepseek.num_layers, 30);
  const auto yi = parse(R"({"architectures":["LlamaForCausalLM"],"model_type":"llama",
    "hidden_size":4096,"intermediate_size":11008,"num_hidden_layers":32,"num_attention_heads":32,
    "num_key_value_heads":4,"max_position_embeddings":4096,"rms_norm_eps":1e-05,
    "rope_theta":5000000.0,"vocab_size":64000})");
  EXPECT_EQ(yi.rope_theta, 5e6);
  EXPECT_EQ(parse(R"({"model_type":"Yi","hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":10})")
                .family,
            ModelFamily::kLlama);
}

TEST(HfConfig, Errors) {
  expect_model_file_error([] { (void)parse(R"({"model_type":"gpt_neox","hidden_size":1})"); },
                          {"config.json", "key 'model_type'", "unsupported architecture 'gpt_neox'", "llama", "mistral",
                           "mixtral", "qwen2", "phi3", "gemma2", "olmo2"});
  expect_model_file_error([] { (void)parse(R"({"model_type":"llama"})"); }, {"key 'vocab_size'", "missing"});
  expect_model_file_error([] { (void)parse(R"({"model_type":"llama","vocab_size":"10"})"); },
                          {"key 'vocab_size'", "expected an integer"});
  expect_model_file_error([] { (void)parse("{\"model_type\": \"llama\",\n  \"x\": tru}"); },
                          {"config.json", "invalid JSON", "(at byte "});
  // Fuzzer finding: a number literal beyond double range is nlohmann out_of_range, not parse_error.
  expect_model_file_error([] { (void)parse(R"({"model_type":"llama","vocab_size":1e336})"); },
                          {"config.json", "invalid JSON", "number overflow"});
  expect_model_file_error([] { (void)parse(std::string(100, '[') + std::string(100, ']')); },
                          {"nested deeper than 64"});
  expect_model_file_error(
      [] {
        (void)parse(R"({"model_type":"llama","vocab_size":10,"hidden_size":64,"intermediate_size":8,
      "num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3})");
      },
      {"num_kv_heads", "do not divide"});
  expect_model_file_error(
      [] {
        (void)parse(R"({"model_type":"llama","vocab_size":10,"hidden_size":64,"intermediate_size":8,
      "num_hidden_layers":1,"num_attention_heads":4,"rope_scaling":{"rope_type":"weird"}})");
      },
      {"rope_scaling.rope_type", "unsupported type 'weird'"});
}

// ---- safetensors ----

std::vector<std::byte> to_bytes(const std::vector<std::uint8_t>& v) {
  std::vector<std::byte> out(v.size());
  if (!v.empty()) std::memcpy(out.data(), v.data(), v.size());
  return out;
}

TEST(Safetensors, F16AndBf16ToFloat) {
  test::StTensor h{
      .name = "h", .dtype = "F16", .shape = {2, 2}, .data = {0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00}};
  test::StTensor b{.name = "b", .dtype = "BF16", .shape = {2}, .data = {0x80, 0x3F, 0x40, 0xC0}};
  test::StTensor i{.name = "i", .dtype = "I32", .shape = {1}, .data = {1, 0, 0, 0}};
  const auto f =
      SafetensorsFile::from_bytes(to_bytes(test::safetensors_bytes({h, b, i}, {{"k", "v"}})), "t.safetensors");
  EXPECT_EQ(f->metadata().at("k"), "v");
  EXPECT_EQ(f->to_float(*f->find_tensor("h")), (std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(f->to_float(*f->find_tensor("b")), (std::vector<float>{1.0f, -3.0f}));
  expect_model_file_error([&] { (void)f->to_float(*f->find_tensor("i")); },
                          {"tensor 'i'", "dtype I32 cannot be converted"});
}

struct StMutation {
  std::string label;
  std::function<std::vector<std::uint8_t>()> make;
  std::vector<std::string> expected;
};
void PrintTo(const StMutation& m, std::ostream* os) {
  *os << m.label;
}

std::vector<std::uint8_t> with_header(const std::string& header, std::size_t data_bytes = 16) {
  std::vector<std::uint8_t> out;
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i, n >>= 8) out.push_back(static_cast<std::uint8_t>(n & 0xFF));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

std::vector<StMutation> st_mutations() {
  return {
      {"too_short", [] { return std::vector<std::uint8_t>(5); }, {"header length", "too short", "(at byte 0)"}},
      {"huge_header_length",
       [] {
         auto b = with_header("{}");
         b[7] = 0x7F;
         return b;
       },
       {"header length", "does not fit", "(at byte 0)"}},
      {"not_json_object", [] { return with_header("[1,2]   "); }, {"header", "must start with '{'", "(at byte 8)"}},
      {"bad_json", [] { return with_header("{\"a\": }"); }, {"header", "invalid JSON", "(at byte 14)"}},
      {"deep_json",
       [] { return with_header("{\"a\":" + std::string(200, '[') + std::string(200, ']') + "}"); },
       {"nested deeper than 64", "(at byte 8)"}},
      {"unknown_dtype",
       [] { return with_header(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})"); },
       {"tensor 'w'", "unknown dtype 'Q4'"}},
      {"negative_dim",
       [] { return with_header(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})"); },
       {"tensor 'w'", "bad dimension -2"}},
      {"huge_shape",
       [] { return with_header(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})"); },
       {"tensor 'w'", "needs more than the 16 data bytes"}},
      {"size_mismatch",
       [] { return with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})"); },
       {"tensor 'w'", "span 8 bytes", "needs 12"}},
      {"offsets_past_end",
       [] { return with_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})"); },
       {"tensor 'w'", "outside the data section of 16 bytes"}},
      {"begin_after_end",
       [] { return with_header(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})"); },
       {"tensor 'w'", "outside the data section"}},
      {"overlap",
       [] {
         return with_header(
             R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})");
       },
       {"tensor 'b'", "overlaps tensor 'a'"}},
      {"number_overflow",
       [] { return with_header(R"({"w":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}})"); },
       {"header", "invalid JSON", "number overflow", "(at byte 8)"}},
      {"metadata_not_string",
       [] { return with_header(R"({"__metadata__":{"x":1}})"); },
       {"__metadata__ 'x'", "strings"}},
      {"entry_not_object", [] { return with_header(R"({"w":3})"); }, {"tensor 'w'", "expected an object"}},
      {"missing_offsets",
       [] { return with_header(R"({"w":{"dtype":"F32","shape":[1]}})"); },
       {"tensor 'w'", "data_offsets"}},
  };
}

class SafetensorsCorrupt : public ::testing::TestWithParam<StMutation> {};

TEST_P(SafetensorsCorrupt, GivesDocumentedError) {
  const std::string name = "bad_" + GetParam().label + ".safetensors";
  try {
    (void)SafetensorsFile::from_bytes(to_bytes(GetParam().make()), name);
    ADD_FAILURE() << "no ModelFileError";
  } catch (const ModelFileError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(name), std::string::npos) << what;
    for (const auto& part : GetParam().expected) {
      EXPECT_NE(what.find(part), std::string::npos) << "missing '" << part << "' in: " << what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fields, SafetensorsCorrupt, ::testing::ValuesIn(st_mutations()),
                         [](const auto& p) { return p.param.label; });

TEST(SafetensorsSharded, IndexErrors) {
  const auto dir = test::scratch_dir("shards");
  test::write_file(dir / "a.safetensors", test::safetensors_bytes({test::st_f32("x", {2}, {1.0f, 2.0f})}));
  test::write_text(dir / "model.safetensors.index.json", R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors"}})");
  expect_model_file_error([&] { (void)SafetensorsModel::open(dir); },
                          {"a.safetensors", "tensor 'y'", "not in this shard"});
  test::write_text(dir / "model.safetensors.index.json", R"({"weight_map":{"x":"../a.safetensors"}})");
  expect_model_file_error([&] { (void)SafetensorsModel::open(dir); }, {"bad shard file name"});
  test::write_text(dir / "model.safetensors.index.json", R"({"weight_map":{"x":"b.safetensors"}})");
  expect_model_file_error([&] { (void)SafetensorsModel::open(dir); }, {"b.safetensors", "cannot open"});
  test::write_text(dir / "model.safetensors.index.json", R"({"metadata":{}})");
  expect_model_file_error([&] { (void)SafetensorsModel::open(dir); }, {"key 'weight_map'"});
  std::filesystem::remove_all(dir);
}

// ---- HF-side fix-ups of WeightsLoader ----

std::vector<float> iota_floats(std::size_t n, float start) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = start + static_cast<float>(i);
  return v;
}

TEST(WeightsLoaderHf, Phi3FusedTensorsAreSplit) {
  const auto dir = test::scratch_dir("phi3");
  // hidden 8, 2 heads of 4, 1 kv head: qkv rows = 8 + 4 + 4; intermediate 6: gate_up rows = 12.
  test::write_text(dir / "config.json", R"({"model_type":"phi3","vocab_size":4,"hidden_size":8,
    "intermediate_size":6,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1})");
  const auto qkv = iota_floats(16 * 8, 0.0f);
  const auto gate_up = iota_floats(12 * 8, 1000.0f);
  test::write_file(dir / "model.safetensors",
                   test::safetensors_bytes({test::st_f32("model.layers.0.self_attn.qkv_proj.weight", {16, 8}, qkv),
                                            test::st_f32("model.layers.0.mlp.gate_up_proj.weight", {12, 8}, gate_up)}));
  const auto w = WeightsLoader::open(dir);
  const auto q = w->load("model.layers.0.self_attn.q_proj.weight");
  const auto k = w->load("model.layers.0.self_attn.k_proj.weight");
  const auto v = w->load("model.layers.0.self_attn.v_proj.weight");
  EXPECT_EQ(w->info("model.layers.0.self_attn.k_proj.weight").shape, (std::vector<std::int64_t>{4, 8}));
  EXPECT_EQ(q, std::vector<float>(qkv.begin(), qkv.begin() + 64));
  EXPECT_EQ(k, std::vector<float>(qkv.begin() + 64, qkv.begin() + 96));
  EXPECT_EQ(v, std::vector<float>(qkv.begin() + 96, qkv.end()));
  // transformers Phi3MLP: gate, up = gate_up_proj(x).chunk(2, dim=-1): gate first.
  EXPECT_EQ(w->load("model.layers.0.mlp.gate_proj.weight"), std::vector<float>(gate_up.begin(), gate_up.begin() + 48));
  EXPECT_EQ(w->load("model.layers.0.mlp.up_proj.weight"), std::vector<float>(gate_up.begin() + 48, gate_up.end()));
  EXPECT_EQ(w->find("model.layers.0.self_attn.qkv_proj.weight"), nullptr);
  std::filesystem::remove_all(dir);
}

TEST(WeightsLoaderHf, Gemma2NormsBecomeOnePlusW) {
  const auto dir = test::scratch_dir("gemma2");
  test::write_text(dir / "config.json", R"({"model_type":"gemma2","vocab_size":4,"hidden_size":8,
    "intermediate_size":6,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":4})");
  const std::vector<float> w{0.5f, -1.0f, 0.0f, 2.0f, 0.25f, 0.0f, 0.0f, 1e-8f};
  test::write_file(dir / "model.safetensors",
                   test::safetensors_bytes({test::st_f32("model.layers.0.pre_feedforward_layernorm.weight", {8}, w),
                                            test::st_f32("model.norm.weight", {8}, w),
                                            test::st_f32("model.embed_tokens.weight", {4, 8}, iota_floats(32, 0))}));
  const auto loader = WeightsLoader::open(dir);
  std::vector<float> plus_one;
  for (float x : w) plus_one.push_back(1.0f + x);
  EXPECT_EQ(loader->load("model.layers.0.pre_feedforward_layernorm.weight"), plus_one);
  EXPECT_EQ(loader->load("model.norm.weight"), plus_one);
  EXPECT_EQ(loader->load("model.embed_tokens.weight"), iota_floats(32, 0));
  EXPECT_TRUE(loader->config().tie_word_embeddings);
  std::filesystem::remove_all(dir);
}

TEST(WeightsLoaderHf, UnpermuteRowsFormula) {
  // 1 head, head_dim 4, rows of 1: gguf order [r0 r1 r2 r3] = hf [h0 h2 h1 h3].
  std::vector<float> rows{10, 12, 11, 13};
  unpermute_qk_rows(rows, 1, 1);
  EXPECT_EQ(rows, (std::vector<float>{10, 11, 12, 13}));
  std::vector<float> odd(6);
  EXPECT_THROW(unpermute_qk_rows(odd, 2, 1), InputError);  // 3 rows per head: not even
}

}  // namespace
}  // namespace kvsafe::engine
