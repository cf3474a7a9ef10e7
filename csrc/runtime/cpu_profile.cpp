#include "runtime/cpu_profile.hpp"

#include <algorithm>

#if defined(RELUSCOPE_X86)
#include <cpuid.h>
#endif

namespace rs {
namespace {

// Every profile below keeps KC = 256, the value every CPU ran with before
// profiles existed: KC fixes the summation order (gemm_tuning.hpp), so a CPU
// gets the same results from its detected profile as it did before, and any
// two profiles on the same target give the same results bit for bit.
constexpr std::int64_t kKcOfEveryProfile = 256;

// Prefetch distance of the zen3 profile, in iterations of the micro-kernel's
// inner loop: off, as measured (see the profile's description). The hardware
// prefetchers already follow both panels: each is read front to back.
constexpr std::int64_t kZen3PrefetchDistance = 0;

// Summation blocks per pass of the zen3 profile: C is read and written once per
// 1024 of the inner dimension instead of once per 256 (see the description).
constexpr std::int64_t kZen3BlocksPerPass = 4;

// The intel-avx512-l2-2m blocking, as measured (see the description): passes of
// two KC blocks with A blocks of 9 micro-panels and B blocks of 1024 columns at
// KC depth (blocking_for halves both for the 512-deep passes).
constexpr std::int64_t kIntelL2TwoMibMcPanels = 9;
constexpr std::int64_t kIntelL2TwoMibNc = 1024;
constexpr std::int64_t kIntelL2TwoMibBlocksPerPass = 2;

// The smallest L2 per core that the intel-avx512-l2-2m profile is for.
constexpr int kIntelLargeL2Kib = 2048;

}  // namespace

const std::vector<CpuProfile>& cpu_profiles() {
  static const std::vector<CpuProfile> all = {
      {"generic",
       "Any CPU without a profile of its own: the best SIMD target it can run, with that "
       "target's default GEMM tuning (tuned on a Zen 5).",
       nullptr,
       false,
       {}},
      {"zen3",
       "AMD Zen 3 (family 25 without AVX-512): AVX2 with two 256-bit FMA pipes. The 6 x 16 "
       "tile's B micro-panel (256 x 16 floats, 16 KiB) takes half of the 32 KiB L1d and the "
       "96 x 256 A block (96 KiB) fits the 512 KiB L2: the avx2 defaults. Software prefetch "
       "measured on an EPYC 7003 (family 25 model 1), GEMM 1024^3 on one thread, medians of "
       "101 interleaved rounds paired by round: distances 4 to 32 ran at 0.95-0.98 times the "
       "speed without on a quiet run, 0.985-1.007 on a busy one. No gain, so it is off. "
       "Measured the same way and not adopted: KC = 384 ran 1.04 times as fast but would "
       "change results; MC = 8 panels 1.01-1.03, within the noise. Passes of four "
       "KC blocks (1024 deep; the A block and B block shrink to keep their sizes), with the "
       "same results: GEMM on one thread, medians of 11 interleaved rounds, 1.05 times the "
       "speed of one block per pass at 1024^3, 1.07 at 256 x 784 x 1024, 1.05 at 2048^3, "
       "1.00 at an inner dimension of 256.",
       "avx2",
       true,
       {kKcOfEveryProfile, 16, 4096, kZen3PrefetchDistance, kZen3BlocksPerPass}},
      {"zen4",
       "AMD Zen 4 (family 25 with AVX-512) and the mobile Zen 5 (family 26, models 0x20-0x2f): "
       "AVX-512 on 256-bit datapaths, so its FMA peak equals AVX2's. Kept on avx512 anyway: "
       "its 32 registers hold an 8 x 32 tile (512 flops per iteration for 10 loads, against "
       "192 flops for 8 loads with avx2's 6 x 16), so fewer instructions and loads per flop, "
       "and it is what Zen 4 ran before profiles (same results). Not measured on a Zen 4: "
       "there the avx512 B micro-panel (256 x 32 floats, 32 KiB) fills the 32 KiB L1d, so "
       "KC = 128 is the first thing to try, at the price of a different summation order.",
       "avx512",
       true,
       {kKcOfEveryProfile, 18, 4096, 0, 1}},
      {"zen5",
       "AMD Zen 5 (family 26) with full-width AVX-512: the machine the avx512 defaults were "
       "tuned on (48 KiB L1d holds the 32 KiB B micro-panel and the streaming A panel).",
       "avx512",
       true,
       {kKcOfEveryProfile, 18, 4096, 0, 1}},
      {"intel-avx512",
       "Intel CPUs with AVX-512 and less than 2 MiB of L2 per core (Skylake-SP, Cascade "
       "Lake, Ice Lake): full-width 512-bit FMA. The avx512 defaults, not measured on these "
       "parts; with a 32 KiB L1d (Skylake-SP, Cascade Lake) the same KC caveat as zen4 "
       "applies.",
       "avx512",
       true,
       {kKcOfEveryProfile, 18, 4096, 0, 1}},
      {"intel-avx512-l2-2m",
       "Intel CPUs with AVX-512 and at least 2 MiB of L2 per core (Sapphire Rapids and "
       "later server cores: 48 KiB L1d), told apart by the L2 size CPUID reports, since a "
       "hypervisor may report another model number (one that makes up cache sizes may pick "
       "this profile for an older part: speed only, the results are the same). Measured on "
       "one that reported family 6 model 167 (bench/cpu_profiles.py, one thread, medians "
       "of 31 interleaved rounds paired by round, two runs): passes of two KC blocks with "
       "9-panel A blocks and 1024-column B blocks ran 1.034-1.036 times as fast as the "
       "avx512 defaults at 1024^3 and 1.037-1.05 at 256 x 784 x 1024 (the medium net's "
       "first layer), and the medium training step 1.045 times (1 and 2 threads). Software "
       "prefetch at distances 4 to 32: 0.985-0.992, so off. The micro-kernel alone, on "
       "panels in L1 and L2, runs at 96% of the FMA peak; a 1024^3 product at about 82%.",
       "avx512",
       true,
       {kKcOfEveryProfile, kIntelL2TwoMibMcPanels, kIntelL2TwoMibNc, 0,
        kIntelL2TwoMibBlocksPerPass}},
  };
  return all;
}

std::vector<std::string> cpu_profile_names() {
  std::vector<std::string> names;
  for (const CpuProfile& p : cpu_profiles()) names.emplace_back(p.name);
  return names;
}

const CpuProfile* find_cpu_profile(const std::string& name) {
  for (const CpuProfile& p : cpu_profiles())
    if (name == p.name) return &p;
  return nullptr;
}

#if defined(RELUSCOPE_X86)
namespace {

// Each core's L2 in KiB as CPUID describes it; 0 when it does not, or when the
// size is beyond AMD's 16-bit field (no real cache; a made-up geometry).
constexpr unsigned long long kLargestL2Kib = 0xFFFF;

int l2_kib_from_cpuid(const std::string& vendor) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (vendor == "GenuineIntel") {
    // Leaf 4 lists the caches one subleaf each, until a null type.
    for (unsigned index = 0; index < 16; ++index) {
      if (!__get_cpuid_count(4, index, &eax, &ebx, &ecx, &edx)) return 0;
      const unsigned type = eax & 0x1f, level = (eax >> 5) & 0x7;
      if (type == 0) return 0;
      constexpr unsigned kData = 1, kUnified = 3;
      if (level == 2 && (type == kData || type == kUnified)) {
        const unsigned long long ways = ((ebx >> 22) & 0x3ff) + 1,
                                 partitions = ((ebx >> 12) & 0x3ff) + 1, line = (ebx & 0xfff) + 1,
                                 sets = ecx + 1ull;
        const unsigned long long kib = ways * partitions * line * sets / 1024;
        return kib <= kLargestL2Kib ? static_cast<int>(kib) : 0;
      }
    }
    return 0;
  }
  if (vendor == "AuthenticAMD" && __get_cpuid(0x80000006, &eax, &ebx, &ecx, &edx))
    return static_cast<int>(ecx >> 16);  // L2 size in KiB
  return 0;
}

}  // namespace
#endif

CpuIdentity detect_cpu() {
  CpuIdentity cpu{"", 0, 0, {}, 0};
#if defined(RELUSCOPE_X86)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx)) {
    char vendor[13] = {};
    // The vendor string is spread over EBX, EDX, ECX, in that order.
    std::copy_n(reinterpret_cast<const char*>(&ebx), 4, vendor);
    std::copy_n(reinterpret_cast<const char*>(&edx), 4, vendor + 4);
    std::copy_n(reinterpret_cast<const char*>(&ecx), 4, vendor + 8);
    cpu.vendor = vendor;
  }
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
    const int base_family = (eax >> 8) & 0xf, base_model = (eax >> 4) & 0xf;
    const int extended_family = (eax >> 20) & 0xff, extended_model = (eax >> 16) & 0xf;
    cpu.family = base_family == 0xf ? base_family + extended_family : base_family;
    cpu.model =
        base_family == 0x6 || base_family == 0xf ? (extended_model << 4) + base_model : base_model;
  }
  cpu.l2_kib = l2_kib_from_cpuid(cpu.vendor);
  // __builtin_cpu_supports also checks that the OS saves the wide registers,
  // so these are the flags the kernels may rely on (as dispatch.cpp does).
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) cpu.flags.emplace_back("avx2");
  if (__builtin_cpu_supports("fma")) cpu.flags.emplace_back("fma");
  if (__builtin_cpu_supports("avx512f")) cpu.flags.emplace_back("avx512f");
  if (__builtin_cpu_supports("avx512dq")) cpu.flags.emplace_back("avx512dq");
  if (__builtin_cpu_supports("avx512bw")) cpu.flags.emplace_back("avx512bw");
  if (__builtin_cpu_supports("avx512vl")) cpu.flags.emplace_back("avx512vl");
#endif
  return cpu;
}

namespace {

bool has_flag(const CpuIdentity& cpu, const char* flag) {
  return std::find(cpu.flags.begin(), cpu.flags.end(), flag) != cpu.flags.end();
}

// The flags the avx2 and avx512 targets are compiled for (CMakeLists.txt).
bool runs_avx2(const CpuIdentity& cpu) { return has_flag(cpu, "avx2") && has_flag(cpu, "fma"); }
bool runs_avx512(const CpuIdentity& cpu) {
  return runs_avx2(cpu) && has_flag(cpu, "avx512f") && has_flag(cpu, "avx512dq") &&
         has_flag(cpu, "avx512bw") && has_flag(cpu, "avx512vl");
}

constexpr int kAmdZen3And4Family = 0x19;
constexpr int kAmdZen5Family = 0x1a;
// Strix Point: Zen 5 cores with 256-bit FP datapaths, like Zen 4's.
constexpr int kStrixPointFirstModel = 0x20, kStrixPointLastModel = 0x2f;

const CpuProfile& named(const char* name) { return *find_cpu_profile(name); }

}  // namespace

const CpuProfile& profile_for(const CpuIdentity& cpu) {
  if (cpu.vendor == "AuthenticAMD") {
    // Zen 3 never has AVX-512 and Zen 4 always has, so within family 25 the
    // flags tell them apart, model numbers or not. A Zen 4 whose AVX-512 the
    // OS or hypervisor hides runs avx2, as Zen 3 does.
    if (cpu.family == kAmdZen3And4Family) {
      if (runs_avx512(cpu)) return named("zen4");
      if (runs_avx2(cpu)) return named("zen3");
    }
    if (cpu.family == kAmdZen5Family && runs_avx512(cpu)) {
      const bool half_width =
          cpu.model >= kStrixPointFirstModel && cpu.model <= kStrixPointLastModel;
      return named(half_width ? "zen4" : "zen5");
    }
  }
  if (cpu.vendor == "GenuineIntel" && runs_avx512(cpu))
    return named(cpu.l2_kib >= kIntelLargeL2Kib ? "intel-avx512-l2-2m" : "intel-avx512");
  return named("generic");
}

}  // namespace rs
