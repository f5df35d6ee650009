// stories260K through both readers. The test derives an HF-layout twin of the GGUF
// (safetensors + config.json, HF Llama names, Q/K rows un-permuted to rotate_half order) with
// its own writer, then checks:
//  - WeightsLoader gives identical tensors and an identical ModelConfig for both;
//  - a plain Llama forward pass with HF rotate_half RoPE on the loaded weights reproduces the
//    golden logits of ../shared/models/stories260K/golden_stories260K.json, which were
//    computed by an independent implementation with adjacent-pair RoPE on the raw GGUF
//    (the Q/K-order oracle: the un-permute is right iff these agree);
//  - rotate_half RoPE on the raw (still permuted) GGUF rows does NOT reproduce them.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <fstream>

#include "modelfile/gguf_reader.h"
#include "modelfile/weights_loader.h"
#include "tests/engine/safetensors_test_writer.h"
#include "tests/engine/weights_test_util.h"

namespace kvsafe::engine {
namespace {

constexpr int kLayers = 5, kDim = 64, kHeads = 8, kKvHeads = 4, kHeadDim = 8, kFf = 172;
constexpr int kVocab = 512;

// GGUF name -> HF Llama name, written out by hand (the loader has its own table).
std::string hf_name(const std::string& g) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  const auto dot = g.find('.', 4);
  const std::string layer = g.substr(4, dot - 4);
  const std::string rest = g.substr(dot + 1);
  static const std::map<std::string, std::string> kMap = {
      {"attn_norm.weight", "input_layernorm.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},   {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},   {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},    {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"}};
  return "model.layers." + layer + "." + kMap.at(rest);
}

// convert_hf_to_gguf.py's permute, literally: w.reshape(n_head, 2, rows/n_head/2, cols)
// .swapaxes(1, 2).reshape(rows, cols), i.e. gguf[h][a][b] = hf[h][b][a] with a < half, b < 2.
std::vector<float> permute_hf_to_gguf(const std::vector<float>& hf, int n_head, int cols) {
  const int rows = static_cast<int>(hf.size()) / cols;
  const int half = rows / n_head / 2;
  std::vector<float> out(hf.size());
  for (int h = 0; h < n_head; ++h)
    for (int a = 0; a < half; ++a)
      for (int b = 0; b < 2; ++b)
        for (int c = 0; c < cols; ++c)
          out[((h * half + a) * 2 + b) * cols + c] = hf[((h * 2 + b) * half + a) * cols + c];
  return out;
}

// Its inverse, by brute force: find for every output row the input row that maps to it.
std::vector<float> unpermute_by_search(const std::vector<float>& gguf, int n_head, int cols) {
  const int rows = static_cast<int>(gguf.size()) / cols;
  std::vector<float> probe(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) probe[static_cast<std::size_t>(r)] = static_cast<float>(r);
  const auto where = permute_hf_to_gguf(probe, n_head, 1);  // where[g] = hf row at gguf row g
  std::vector<float> hf(gguf.size());
  for (int g = 0; g < rows; ++g) {
    const int r = static_cast<int>(where[static_cast<std::size_t>(g)]);
    std::copy_n(gguf.begin() + g * cols, cols, hf.begin() + r * cols);
  }
  return hf;
}

class StoriesTwin : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(test::scratch_dir("twin"));
    const auto gguf = GgufFile::open(test::stories_gguf());
    std::vector<test::StTensor> tensors;
    for (const auto& t : gguf->tensors()) {
      auto values = gguf->dequantize(t);
      const auto shape = t.shape();
      const int cols = static_cast<int>(t.dims[0]);
      if (t.name.ends_with("attn_q.weight")) values = unpermute_by_search(values, kHeads, cols);
      if (t.name.ends_with("attn_k.weight")) values = unpermute_by_search(values, kKvHeads, cols);
      tensors.push_back(test::st_f32(hf_name(t.name), shape, values));
    }
    // Single file, and the same tensors in two shards with an index.
    test::write_file(*dir_ / "model.safetensors", test::safetensors_bytes(tensors, {{"format", "pt"}}));
    const auto sharded = *dir_ / "sharded";
    std::filesystem::create_directories(sharded);
    std::vector<test::StTensor> a(tensors.begin(), tensors.begin() + 20);
    std::vector<test::StTensor> b(tensors.begin() + 20, tensors.end());
    test::write_file(sharded / "model-00001-of-00002.safetensors", test::safetensors_bytes(a));
    test::write_file(sharded / "model-00002-of-00002.safetensors", test::safetensors_bytes(b));
    nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
    for (const auto& t : a) index["weight_map"][t.name] = "model-00001-of-00002.safetensors";
    for (const auto& t : b) index["weight_map"][t.name] = "model-00002-of-00002.safetensors";
    test::write_text(sharded / "model.safetensors.index.json", index.dump(1));
    const double eps = *gguf->get_float("llama.attention.layer_norm_rms_epsilon");
    char eps_text[64];
    std::snprintf(eps_text, sizeof eps_text, "%.17g", eps);
    const std::string config = std::string(R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 512,
  "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5,
  "num_attention_heads": 8, "num_key_value_heads": 4, "max_position_embeddings": 2048,
  "rms_norm_eps": )") + eps_text +
                               R"(, "rope_theta": 10000.0, "tie_word_embeddings": false,
  "hidden_act": "silu", "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2})";
    test::write_text(*dir_ / "config.json", config);
    test::write_text(sharded / "config.json", config);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::filesystem::path* dir_;
};
std::filesystem::path* StoriesTwin::dir_ = nullptr;

void expect_same_tensors(const WeightsLoader& a, const WeightsLoader& b) {
  ASSERT_EQ(a.tensor_names(), b.tensor_names());
  EXPECT_EQ(a.tensor_names().size(), 48U);
  for (const auto& name : a.tensor_names()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(a.info(name).shape, b.info(name).shape);
    const auto x = a.load(name);
    const auto y = b.load(name);
    ASSERT_EQ(x.size(), y.size());
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * 4), 0);
  }
}

TEST_F(StoriesTwin, GgufAndSafetensorsLoadIdentically) {
  const auto gguf = WeightsLoader::open(test::stories_gguf());
  const auto hf = WeightsLoader::open(*dir_);
  EXPECT_EQ(gguf->format(), WeightsLoader::Format::kGguf);
  EXPECT_EQ(hf->format(), WeightsLoader::Format::kSafetensors);
  EXPECT_EQ(gguf->config(), hf->config());
  const ModelConfig& c = gguf->config();
  EXPECT_EQ(c.family, ModelFamily::kLlama);
  EXPECT_EQ(c.vocab_size, kVocab);
  EXPECT_EQ(c.hidden_size, kDim);
  EXPECT_EQ(c.intermediate_size, kFf);
  EXPECT_EQ(c.num_layers, kLayers);
  EXPECT_EQ(c.num_heads, kHeads);
  EXPECT_EQ(c.num_kv_heads, kKvHeads);
  EXPECT_EQ(c.head_dim, kHeadDim);
  EXPECT_EQ(c.rotary_dim, kHeadDim);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.tie_word_embeddings);
  expect_same_tensors(*gguf, *hf);
  // Stored blocks are a GGUF thing: the engine keeps quantized only what a GGUF file holds.
  EXPECT_FALSE(hf->load_blocks("model.layers.0.self_attn.q_proj.weight").has_value());
  const auto q_blocks = gguf->load_blocks("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(q_blocks.has_value());
  EXPECT_EQ(q_blocks->type, GgmlType::kF32);
  EXPECT_EQ(q_blocks->bytes.size(), gguf->info("model.layers.0.self_attn.q_proj.weight").n_elements * 4);
  EXPECT_EQ(gguf->info("model.layers.0.self_attn.q_proj.weight").stored_name, "blk.0.attn_q.weight");
  EXPECT_EQ(gguf->info("model.layers.0.self_attn.k_proj.weight").shape, (std::vector<std::int64_t>{32, 64}));
}

TEST_F(StoriesTwin, ShardedCheckpointLoadsIdentically) {
  const auto single = WeightsLoader::open(*dir_ / "config.json");
  const auto sharded = WeightsLoader::open(*dir_ / "sharded");
  expect_same_tensors(*single, *sharded);
  const auto st = SafetensorsFile::open(*dir_ / "model.safetensors");
  EXPECT_EQ(st->metadata().at("format"), "pt");
}

TEST_F(StoriesTwin, UnpermuteInvertsTheConverterPermutation) {
  const auto gguf = GgufFile::open(test::stories_gguf());
  const auto loader = WeightsLoader::open(test::stories_gguf());
  for (const auto& [name, heads] : {std::pair{"0.attn_q", kHeads}, std::pair{"3.attn_k", kKvHeads}}) {
    const auto raw = gguf->dequantize(gguf->tensor(std::string("blk.") + name + ".weight"));
    const std::string hf = hf_name(std::string("blk.") + name + ".weight");
    const auto loaded = loader->load(hf);
    EXPECT_EQ(permute_hf_to_gguf(loaded, heads, kDim), raw) << name;
  }
}

// ---- a tiny Llama forward pass (double precision), RoPE style selectable ----

enum class Rope { kRotateHalf, kAdjacentPairs };

struct Weights {
  std::map<std::string, std::vector<float>> t;
  const std::vector<float>& operator[](const std::string& n) const { return t.at(n); }
};

std::vector<double> matvec(const std::vector<float>& w, const std::vector<double>& x, int rows) {
  const int cols = static_cast<int>(x.size());
  std::vector<double> y(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    double s = 0;
    for (int c = 0; c < cols; ++c)
      s += static_cast<double>(w[static_cast<std::size_t>(r * cols + c)]) * x[static_cast<std::size_t>(c)];
    y[static_cast<std::size_t>(r)] = s;
  }
  return y;
}

std::vector<double> rmsnorm(const std::vector<double>& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double s = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i];
  return y;
}

void rope(std::vector<double>& v, int pos, Rope style) {
  const int half = kHeadDim / 2;
  for (std::size_t h = 0; h < v.size() / kHeadDim; ++h) {
    double* x = v.data() + h * kHeadDim;
    for (int i = 0; i < half; ++i) {
      const double theta = pos * std::pow(10000.0, -2.0 * i / kHeadDim);
      const int a = style == Rope::kRotateHalf ? i : 2 * i;
      const int b = style == Rope::kRotateHalf ? i + half : 2 * i + 1;
      const double x0 = x[a], x1 = x[b];
      x[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
      x[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
    }
  }
}

std::vector<double> last_logits(const Weights& w, const std::vector<int>& ids, Rope style, double eps) {
  std::vector<std::vector<std::vector<double>>> kc(kLayers), vc(kLayers);
  std::vector<double> logits;
  for (int pos = 0; pos < static_cast<int>(ids.size()); ++pos) {
    const auto& emb = w["model.embed_tokens.weight"];
    std::vector<double> x(emb.begin() + ids[static_cast<std::size_t>(pos)] * kDim,
                          emb.begin() + (ids[static_cast<std::size_t>(pos)] + 1) * kDim);
    for (int l = 0; l < kLayers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      auto h = rmsnorm(x, w[p + "input_layernorm.weight"], eps);
      auto q = matvec(w[p + "self_attn.q_proj.weight"], h, kHeads * kHeadDim);
      auto k = matvec(w[p + "self_attn.k_proj.weight"], h, kKvHeads * kHeadDim);
      auto v = matvec(w[p + "self_attn.v_proj.weight"], h, kKvHeads * kHeadDim);
      rope(q, pos, style);
      rope(k, pos, style);
      kc[static_cast<std::size_t>(l)].push_back(k);
      vc[static_cast<std::size_t>(l)].push_back(v);
      std::vector<double> att(kDim, 0.0);
      for (int hh = 0; hh < kHeads; ++hh) {
        const int kv = hh / (kHeads / kKvHeads);
        std::vector<double> sc;
        for (const auto& kk : kc[static_cast<std::size_t>(l)]) {
          double s = 0;
          for (int d = 0; d < kHeadDim; ++d)
            s += q[static_cast<std::size_t>(hh * kHeadDim + d)] * kk[static_cast<std::size_t>(kv * kHeadDim + d)];
          sc.push_back(s / std::sqrt(static_cast<double>(kHeadDim)));
        }
        const double m = *std::max_element(sc.begin(), sc.end());
        double z = 0;
        for (double& s : sc) z += (s = std::exp(s - m));
        for (std::size_t j = 0; j < sc.size(); ++j)
          for (int d = 0; d < kHeadDim; ++d)
            att[static_cast<std::size_t>(hh * kHeadDim + d)] +=
                sc[j] / z * vc[static_cast<std::size_t>(l)][j][static_cast<std::size_t>(kv * kHeadDim + d)];
      }
      const auto o = matvec(w[p + "self_attn.o_proj.weight"], att, kDim);
      for (int i = 0; i < kDim; ++i) x[static_cast<std::size_t>(i)] += o[static_cast<std::size_t>(i)];
      h = rmsnorm(x, w[p + "post_attention_layernorm.weight"], eps);
      const auto g = matvec(w[p + "mlp.gate_proj.weight"], h, kFf);
      const auto u = matvec(w[p + "mlp.up_proj.weight"], h, kFf);
      std::vector<double> a(kFf);
      for (int i = 0; i < kFf; ++i) {
        const auto ii = static_cast<std::size_t>(i);
        a[ii] = g[ii] / (1.0 + std::exp(-g[ii])) * u[ii];
      }
      const auto d = matvec(w[p + "mlp.down_proj.weight"], a, kDim);
      for (int i = 0; i < kDim; ++i) x[static_cast<std::size_t>(i)] += d[static_cast<std::size_t>(i)];
    }
    x = rmsnorm(x, w["model.norm.weight"], eps);
    logits = matvec(w["lm_head.weight"], x, kVocab);
  }
  return logits;
}

struct Golden {
  std::vector<int> ids;
  std::vector<double> logits;
};

std::vector<Golden> golden_cases() {
  std::ifstream in(test::source_dir() / ".." / "shared" / "models" / "stories260K" / "golden_stories260K.json");
  const auto j = nlohmann::json::parse(in);
  std::vector<Golden> out;
  for (const auto& c : j["cases"]) {
    out.push_back({c["prompt_ids"].get<std::vector<int>>(), c["first_step_logits"].get<std::vector<double>>()});
  }
  return out;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

Weights all_weights(const WeightsLoader& loader) {
  Weights w;
  for (const auto& n : loader.tensor_names()) w.t[n] = loader.load(n);
  return w;
}

TEST_F(StoriesTwin, RotateHalfOnLoadedWeightsReproducesGoldenLogits) {
  const auto cases = golden_cases();
  ASSERT_EQ(cases.size(), 2U);
  const auto gguf_loader = WeightsLoader::open(test::stories_gguf());
  const auto hf_loader = WeightsLoader::open(*dir_);
  const double eps = gguf_loader->config().rms_norm_eps;
  const Weights loaded = all_weights(*gguf_loader);
  const Weights twin = all_weights(*hf_loader);
  // The raw GGUF rows (no un-permute), under the same HF names.
  const auto raw_file = GgufFile::open(test::stories_gguf());
  Weights raw;
  for (const auto& t : raw_file->tensors()) raw.t[hf_name(t.name)] = raw_file->dequantize(t);

  for (const auto& c : cases) {
    const auto from_gguf = last_logits(loaded, c.ids, Rope::kRotateHalf, eps);
    const auto from_twin = last_logits(twin, c.ids, Rope::kRotateHalf, eps);
    const auto reference = last_logits(raw, c.ids, Rope::kAdjacentPairs, eps);
    const auto wrong = last_logits(raw, c.ids, Rope::kRotateHalf, eps);
    EXPECT_LT(max_abs_diff(from_gguf, c.logits), 2e-4);
    EXPECT_LT(max_abs_diff(from_twin, c.logits), 2e-4);
    EXPECT_LT(max_abs_diff(reference, c.logits), 2e-4);  // the forward pass itself is right
    EXPECT_GT(max_abs_diff(wrong, c.logits), 1e-2);      // the trap is real
    EXPECT_EQ(std::max_element(from_gguf.begin(), from_gguf.end()) - from_gguf.begin(),
              std::max_element(c.logits.begin(), c.logits.end()) - c.logits.begin());
  }
}

}  // namespace
}  // namespace kvsafe::engine
