#pragma once
// Tests that run once per copy of the CPU kernels (common/cpu_kernels.h): a test suite
// derived from CpuCopyTest and instantiated with KVSAFE_INSTANTIATE_CPU_COPIES runs each of
// its cases with the AVX-512, the AVX2 and the generic copy forced. A copy this CPU cannot
// run is reported as skipped ("no AVX-512 here"), never passed; a copy that was asked for
// and is not the one the kernels now pick fails.

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "common/cpu_kernels.h"

namespace kvsafe::testing {

class CpuCopyTest : public ::testing::TestWithParam<CpuKernels> {
 protected:
  void SetUp() override {
    if (!use_cpu_kernels(GetParam())) {
      GTEST_SKIP() << "no " << to_string(GetParam()) << " here: this CPU runs " << describe_cpu_kernels();
    }
    ASSERT_EQ(active_cpu_kernels(), GetParam()) << "the copy asked for is not the one the kernels pick";
  }
  void TearDown() override { use_cpu_kernels(std::nullopt); }

  // The copy this case runs.
  static CpuKernels copy() { return GetParam(); }
};

// Runs body with `copy` forced, then restores the default; false (body not run) when this
// CPU cannot run it.
template <typename Body>
bool with_cpu_kernels(CpuKernels copy, Body body) {
  if (!use_cpu_kernels(copy)) return false;
  struct Restore {
    ~Restore() { use_cpu_kernels(std::nullopt); }
  } restore;
  body();
  return true;
}

inline std::string cpu_copy_test_name(const ::testing::TestParamInfo<CpuKernels>& info) {
  return std::string(to_string(info.param));
}

}  // namespace kvsafe::testing

#define KVSAFE_INSTANTIATE_CPU_COPIES(suite)                                                                         \
  INSTANTIATE_TEST_SUITE_P(                                                                                          \
      Copies, suite,                                                                                                 \
      ::testing::Values(::kvsafe::CpuKernels::kAvx512, ::kvsafe::CpuKernels::kAvx2, ::kvsafe::CpuKernels::kGeneric), \
      ::kvsafe::testing::cpu_copy_test_name)
