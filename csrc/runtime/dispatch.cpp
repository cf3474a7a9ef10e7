#include "runtime/dispatch.hpp"

#include <atomic>
#include <deque>
#include <mutex>
#include <stdexcept>

#include "runtime/cpu_profile.hpp"

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

const Target* find_target(const std::string& name) {
  for (const Target& t : targets())
    if (name == t.name) return &t;
  return nullptr;
}

// The target a profile runs on, or nullptr when it is not compiled in.
const Target* target_of(const CpuProfile& profile) {
  return profile.simd_target ? find_target(profile.simd_target) : best_supported();
}

// The tables in use, switched together by activate.
std::atomic<const KernelSet*> g_active{best_supported()->kernel_set()};
std::atomic<const ExperimentKernelSet*> g_active_experiments{
    best_supported()->experiment_kernel_set()};

void activate(const Target& t) {
  g_active_experiments.store(t.experiment_kernel_set(), std::memory_order_release);
  g_active.store(t.kernel_set(), std::memory_order_release);
}

// Makes `active` the target in use, with `profile`'s GEMM tuning on the
// profile's own target only (its blocking counts rows in that target's MR).
// Every other target gets its defaults, so a target forced over a profile
// (RELUSCOPE_SIMD) runs as it would alone, and a tuning set by set_gemm_tuning
// lasts until the next selection.
void install(const CpuProfile& profile, const Target& active) {
  const Target* tuned = profile.has_gemm_tuning ? target_of(profile) : nullptr;
  for (const Target& t : targets())
    t.kernel_set()->use_gemm_tuning(&t == tuned ? &profile.gemm_tuning : nullptr);
  activate(active);
}

bool runnable(const Target* t) { return t && t->cpu_supports(); }

// profile_for reads the same CPUID flags as cpu_supports, so its profile can
// run; "generic" stands in should the two ever disagree.
const CpuProfile& detected() {
  static const CpuProfile& profile = []() -> const CpuProfile& {
    const CpuProfile& p = profile_for(detect_cpu());
    return runnable(target_of(p)) ? p : *find_cpu_profile("generic");
  }();
  return profile;
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& n : names) text += (text.empty() ? "" : ", ") + n;
  return text;
}

// The profile in use: the detected one, installed when the module loads.
std::atomic<const CpuProfile*> g_profile{[] {
  install(detected(), *target_of(detected()));
  return &detected();
}()};

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
  const Target* t = find_target(name);
  if (!t)
    throw std::invalid_argument("unknown SIMD target '" + name +
                                "'; compiled targets: " + joined(compiled_targets()));
  if (!t->cpu_supports())
    throw std::runtime_error("SIMD target '" + name +
                             "' is compiled in but this CPU cannot run it");
  install(*g_profile.load(std::memory_order_acquire), *t);
}

std::string selected_target() { return kernels().name; }

const GemmTuning& gemm_tuning_in_use() { return kernels().gemm_tuning(); }

void set_gemm_tuning(const GemmTuning& tuning) {
  // The blocking's sizes multiply into the packing buffers' sizes (and kc
  // into mc_panels and nc for deep passes): bounded, so that no product of
  // them overflows.
  constexpr std::int64_t kLargest = std::int64_t{1} << 24;
  if (tuning.kc < 1 || tuning.mc_panels < 1 || tuning.nc < 32 || tuning.nc % 32 != 0 ||
      tuning.prefetch_distance < 0 || tuning.blocks_per_pass < 1 || tuning.kc > kLargest ||
      tuning.blocks_per_pass > kLargest / tuning.kc || tuning.mc_panels > kLargest ||
      tuning.nc > kLargest || tuning.prefetch_distance > kLargest)
    throw std::invalid_argument(
        "GEMM tuning needs kc >= 1, blocks_per_pass >= 1, mc_panels >= 1, nc a positive "
        "multiple of 32 and prefetch_distance >= 0, with kc * blocks_per_pass, mc_panels, nc "
        "and prefetch_distance at most 2**24");
  // Every tuning set here is kept until exit: a GEMM started on another thread
  // may still be reading the one it replaces. A deque never moves its elements.
  static std::mutex lock;
  static std::deque<GemmTuning> kept;
  std::lock_guard<std::mutex> guard(lock);
  kept.push_back(tuning);
  kernels().use_gemm_tuning(&kept.back());
}

void select_cpu_profile(const std::string& name) {
  const CpuProfile* profile = find_cpu_profile(name);
  if (!profile)
    throw std::invalid_argument("unknown CPU profile '" + name +
                                "'; known profiles: " + joined(cpu_profile_names()));
  const Target* target = target_of(*profile);
  if (!runnable(target))  // only a profile that names its target can fail here
    throw std::runtime_error("CPU profile '" + name + "' uses the " + profile->simd_target +
                             " SIMD target, which this CPU cannot run (it can run: " +
                             joined(supported_targets()) + ")");
  install(*profile, *target);
  g_profile.store(profile, std::memory_order_release);
}

std::string selected_cpu_profile() { return g_profile.load(std::memory_order_acquire)->name; }

std::string detected_cpu_profile() { return detected().name; }

}  // namespace rs
