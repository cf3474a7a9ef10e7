// What every native kernel test shares: the kernels of one SIMD target at one
// thread count as the test parameter (every compiled target, 1 and 2 threads;
// a target the CPU cannot run is skipped with a message), random inputs, and
// the tolerance of a float32 sum against its double-precision reference.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_set.hpp"

namespace rs::testing {

struct KernelConfig {
  std::string target;
  int threads;
};

// Every compiled target at 1 and 2 threads. Two threads are asked of the
// kernels directly, even on a one-processor machine, so the parallel paths run.
std::vector<KernelConfig> kernel_configs();
// gtest prints a parameter in failure messages and test lists.
inline void PrintTo(const KernelConfig& c, std::ostream* os) {
  *os << c.target << ", " << c.threads << " thread" << (c.threads == 1 ? "" : "s");
}
std::string config_name(const ::testing::TestParamInfo<KernelConfig>& info);

class KernelTest : public ::testing::TestWithParam<KernelConfig> {
 protected:
  void SetUp() override;
  const KernelSet& kernels() const { return *kernels_; }
  int threads() const { return GetParam().threads; }

 private:
  const KernelSet* kernels_ = nullptr;
};

// Uniform in [low, high), from a generator seeded by the caller.
std::vector<float> random_floats(std::size_t count, std::mt19937& rng, float low = -1.0f,
                                 float high = 1.0f);

// A float32 result against its double reference: within rtol of the sum of the
// magnitudes of the terms that formed it (`magnitude`), which bounds the
// rounding error of any summation order.
inline bool close_to(float actual, double expected, double magnitude, double rtol = 1e-5) {
  return std::fabs(static_cast<double>(actual) - expected) <= rtol * magnitude + 1e-30;
}

// Instantiates a KernelTest subclass over every target and thread count.
#define RS_KERNEL_TEST_SUITE(suite)                                                            \
  INSTANTIATE_TEST_SUITE_P(Targets, suite, ::testing::ValuesIn(rs::testing::kernel_configs()), \
                           rs::testing::config_name)

}  // namespace rs::testing
