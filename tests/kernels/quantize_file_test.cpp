// kvsafe quantize's library side on a small safetensors file written by the test.

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "kernels/kv_quant.h"
#include "kernels/kv_quant_file.h"

namespace kvsafe::kernels {
namespace {

TEST(QuantizeFile, FakeQuantizesEveryTensorAndReportsErrors) {
  const auto dir = std::filesystem::temp_directory_path() / "kvsafe_quantize_file_test";
  std::filesystem::create_directories(dir);
  at::manual_seed(8);
  const at::Tensor k = at::randn({2, 5, 64});
  const at::Tensor v = at::randn({2, 5, 64}).to(at::kBFloat16);
  write_safetensors(dir / "in.safetensors",
                    {{"model.layers.3.self_attn.k_proj", k}, {"model.layers.3.self_attn.v_proj", v}});
  const KvQuantSpec spec = parse_kv_label("int4-ptok-asym+fp16[0]");
  const auto stats = quantize_safetensors_file(dir / "in.safetensors", dir / "out.safetensors", spec);
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].side, "key");
  EXPECT_EQ(stats[1].side, "value");
  EXPECT_EQ(stats[0].layer, 3);
  const auto out = read_safetensors(dir / "out.safetensors");
  const at::Tensor kq = out.at("model.layers.3.self_attn.k_proj");
  EXPECT_TRUE(kq.equal(paper_fake_quantize(k, 4, false, Granularity::kPerToken, 0)));
  EXPECT_EQ(out.at("model.layers.3.self_attn.v_proj").scalar_type(), at::kBFloat16);
  EXPECT_NEAR(stats[0].mse, (kq - k).pow(2).mean().item<double>(), 1e-9);
  EXPECT_GT(stats[0].snr_db, 10.0);
  EXPECT_GT(stats[0].max_abs_error, 0.0);
  EXPECT_DOUBLE_EQ(stats[0].effective_bits, effective_bits(spec, {.head_dim = 64}));
  // Cache layout needs 3-d or 4-d tensors; garbage files are refused.
  const auto cache = quantize_safetensors_file(dir / "in.safetensors", dir / "out2.safetensors", parse_kv_label("q8_0"),
                                               {.layout = Placement::kCache});
  EXPECT_LT(cache[0].mse, stats[0].mse);
  std::ofstream(dir / "bad.safetensors") << "not a safetensors file";
  EXPECT_THROW(quantize_safetensors_file(dir / "bad.safetensors", dir / "o.safetensors", spec), InputError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvsafe::kernels
