// CUDA group codec against the CPU reference, bit for bit: every codec x bit width x
// shape. Label `cuda`; skips without a GPU. Sized to finish in seconds on an H200.

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/group_codec.h"

#if defined(KVSAFE_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace kvsafe::kernels {
namespace {

struct Case {
  Codec codec;
  int bits;
  int group_len;
  std::int64_t n_groups;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (std::int64_t groups : {1, 37, 8 * 4096}) {
    for (int bits : {2, 3, 4, 5, 6, 8}) {
      for (int len : {32, 64, 128}) {
        out.push_back({Codec::kIntAsym, bits, len, groups});
        out.push_back({Codec::kIntSym, bits, len, groups});
      }
    }
    for (Codec c : {Codec::kFp8E4M3, Codec::kFp8E5M2}) out.push_back({c, 8, 128, groups});
    for (Codec c : {Codec::kQ8_0, Codec::kQ4_0, Codec::kQ4_1, Codec::kQ5_0, Codec::kQ5_1}) {
      out.push_back({c, 8, 32, groups * 4});
    }
  }
  return out;
}

class CudaVsCpu : public ::testing::TestWithParam<Case> {};

TEST_P(CudaVsCpu, BitExact) {
#if !defined(KVSAFE_HAVE_CUDA)
  GTEST_SKIP() << "built without CUDA";
#else
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const Case c = GetParam();
  CodecParams p{.codec = c.codec, .bits = c.bits, .group_len = c.group_len, .n_groups = c.n_groups, .fp8_scale = 0.75f};
  const std::size_t n = static_cast<std::size_t>(p.n_groups * p.group_len);
  std::vector<float> x(n);
  std::mt19937 rng(static_cast<unsigned>(n + c.bits));
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (float& v : x) v = dist(rng);
  x[0] = 1e4f;  // an outlier; and a constant group
  for (int i = 0; i < p.group_len && p.n_groups > 1; ++i) x[static_cast<std::size_t>(p.group_len + i)] = 0.5f;
  const std::size_t cb = static_cast<std::size_t>(p.n_groups * codes_bytes(p));
  const std::size_t sb = static_cast<std::size_t>(p.n_groups * 4);
  std::vector<std::uint8_t> codes(cb), scales(sb), zeros(sb), dcodes(cb), dscales(sb), dzeros(sb);
  std::vector<float> out(n), dout(n);
  quantize_pack_cpu(x.data(), p, codes.data(), scales.data(), zeros.data());
  unpack_dequantize_cpu(codes.data(), scales.data(), zeros.data(), p, out.data());

  float *gx = nullptr, *gout = nullptr;
  std::uint8_t *gcodes = nullptr, *gscales = nullptr, *gzeros = nullptr;
  ASSERT_EQ(cudaMalloc(&gx, n * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&gout, n * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&gcodes, cb), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&gscales, sb), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&gzeros, sb), cudaSuccess);
  ASSERT_EQ(cudaMemset(gscales, 0, sb), cudaSuccess);
  ASSERT_EQ(cudaMemset(gzeros, 0, sb), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(gx, x.data(), n * 4, cudaMemcpyHostToDevice), cudaSuccess);
  quantize_pack_cuda(gx, p, gcodes, gscales, gzeros);
  unpack_dequantize_cuda(gcodes, gscales, gzeros, p, gout);
  ASSERT_EQ(cudaMemcpy(dcodes.data(), gcodes, cb, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dscales.data(), gscales, sb, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dzeros.data(), gzeros, sb, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dout.data(), gout, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  for (void* ptr : {static_cast<void*>(gx), static_cast<void*>(gout), static_cast<void*>(gcodes),
                    static_cast<void*>(gscales), static_cast<void*>(gzeros)}) {
    EXPECT_EQ(cudaFree(ptr), cudaSuccess);
  }
  const std::size_t used_scales = static_cast<std::size_t>(p.n_groups * scale_bytes(p));
  const std::size_t used_zeros = static_cast<std::size_t>(p.n_groups * zero_bytes(p));
  EXPECT_EQ(codes, dcodes);
  EXPECT_EQ(0, std::memcmp(scales.data(), dscales.data(), used_scales));
  EXPECT_EQ(0, std::memcmp(zeros.data(), dzeros.data(), used_zeros));
  EXPECT_EQ(0, std::memcmp(out.data(), dout.data(), n * 4));
#endif
}

std::string name(const ::testing::TestParamInfo<Case>& info) {
  static const char* names[] = {"IntSym", "IntAsym", "Fp8E4M3", "Fp8E5M2", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"};
  const Case& c = info.param;
  return std::string(names[static_cast<int>(c.codec)]) + "_b" + std::to_string(c.bits) + "_g" +
         std::to_string(c.group_len) + "_n" + std::to_string(c.n_groups);
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CudaVsCpu, ::testing::ValuesIn(cases()), name);

}  // namespace
}  // namespace kvsafe::kernels
