#include "kernel_test.hpp"

#include <algorithm>

#include "runtime/dispatch.hpp"

namespace rs::testing {

std::vector<KernelConfig> kernel_configs() {
  std::vector<KernelConfig> configs;
  for (const std::string& target : compiled_targets())
    for (int threads : {1, 2}) configs.push_back({target, threads});
  return configs;
}

std::string config_name(const ::testing::TestParamInfo<KernelConfig>& info) {
  return info.param.target + "_" + std::to_string(info.param.threads) + "thread" +
         (info.param.threads == 1 ? "" : "s");
}

void KernelTest::SetUp() {
  const std::vector<std::string> supported = supported_targets();
  if (std::find(supported.begin(), supported.end(), GetParam().target) == supported.end())
    GTEST_SKIP() << "SIMD target " << GetParam().target
                 << " is compiled in but the CPU cannot run it";
  // As the bindings do: select the target, then call through kernels().
  select_target(GetParam().target);
  kernels_ = &rs::kernels();
  ASSERT_EQ(std::string(kernels_->name), GetParam().target);
}

std::vector<float> random_floats(std::size_t count, std::mt19937& rng, float low, float high) {
  std::uniform_real_distribution<float> uniform(low, high);
  std::vector<float> values(count);
  for (float& v : values) v = uniform(rng);
  return values;
}

}  // namespace rs::testing
