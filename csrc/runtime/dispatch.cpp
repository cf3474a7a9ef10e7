#include "runtime/dispatch.hpp"

#include <atomic>
#include <stdexcept>

namespace rs {
namespace {

// One instruction-set target: its two kernel tables, chosen together.
struct Target {
  const char* name;
  const KernelSet* (*kernel_set)();
  const ExperimentKernelSet* (*experiment_kernel_set)();
  bool (*cpu_supports)();
};

bool always() { return true; }

#if defined(RELUSCOPE_X86)
// __builtin_cpu_supports checks CPUID and, for AVX and AVX-512, that the OS
// saves the wide registers (XGETBV), so a "yes" means the code can run.
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool cpu_has_avx512() {
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}
#endif

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"portable", kernel_set_portable, experiment_kernel_set_portable, always},
#if defined(RELUSCOPE_X86)
      {"avx2", kernel_set_avx2, experiment_kernel_set_avx2, cpu_has_avx2},
      {"avx512", kernel_set_avx512, experiment_kernel_set_avx512, cpu_has_avx512},
#endif
  };
  return all;
}

const Target* best_supported() {
  const Target* best = nullptr;
  for (const Target& t : targets())
    if (t.cpu_supports()) best = &t;
  return best;
}

// The tables in use, switched together by select_target.
std::atomic<const KernelSet*> g_active{best_supported()->kernel_set()};
std::atomic<const ExperimentKernelSet*> g_active_experiments{
    best_supported()->experiment_kernel_set()};

}  // namespace

const KernelSet& kernels() { return *g_active.load(std::memory_order_acquire); }

const ExperimentKernelSet& experiment_kernels() {
  return *g_active_experiments.load(std::memory_order_acquire);
}

std::vector<std::string> compiled_targets() {
  std::vector<std::string> names;
  for (const Target& t : targets()) names.emplace_back(t.name);
  return names;
}

std::vector<std::string> supported_targets() {
  std::vector<std::string> names;
  for (const Target& t : targets())
    if (t.cpu_supports()) names.emplace_back(t.name);
  return names;
}

std::string best_target() { return best_supported()->name; }

void select_target(const std::string& name) {
  for (const Target& t : targets()) {
    if (name != t.name) continue;
    if (!t.cpu_supports())
      throw std::runtime_error("SIMD target '" + name + "' is compiled in but this CPU cannot run it");
    g_active_experiments.store(t.experiment_kernel_set(), std::memory_order_release);
    g_active.store(t.kernel_set(), std::memory_order_release);
    return;
  }
  std::string known;
  for (const Target& t : targets()) known += (known.empty() ? "" : ", ") + std::string(t.name);
  throw std::invalid_argument("unknown SIMD target '" + name + "'; compiled targets: " + known);
}

std::string selected_target() { return kernels().name; }

}  // namespace rs
