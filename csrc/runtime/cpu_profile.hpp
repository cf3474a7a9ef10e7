// CPU profiles: what to run on one micro-architecture. A profile names the
// SIMD target to use and the GEMM tuning (blocking, prefetch) for that target.
// The profile is detected once when the module loads (vendor, family and
// model from CPUID) and may be forced by name (RELUSCOPE_CPU_PROFILE); the
// choice itself is made in dispatch.cpp.
#pragma once

#include <string>
#include <vector>

#include "kernels/gemm_tuning.hpp"

namespace rs {

struct CpuProfile {
  const char* name;
  // What the profile is for, and why its parameters are what they are.
  const char* description;
  // The SIMD target to use; nullptr: the best target this CPU can run.
  const char* simd_target;
  // The GEMM tuning for that target; false: the target's defaults.
  bool has_gemm_tuning;
  GemmTuning gemm_tuning;
};

// The CPU as CPUID reports it. Family and model are the displayed values
// (extended fields folded in, as in /proc/cpuinfo); flags use the names of
// /proc/cpuinfo ("avx2", "fma", "avx512f", ...), and only those the OS lets
// us use are listed.
struct CpuIdentity {
  std::string vendor;  // "AuthenticAMD", "GenuineIntel", ...; "" off x86
  int family;
  int model;
  std::vector<std::string> flags;
  // Each core's L2 cache in KiB, from CPUID (Intel leaf 4, AMD leaf 0x80000006);
  // 0 when unknown or above 0xFFFF. Leaf 4 describes one cache instance, which
  // is per core on the server cores of today. Hypervisors often report a model
  // number of their choosing; many pass the cache geometry through, some make
  // one up (QEMU without host-cache-info reports 4 MiB).
  int l2_kib = 0;
};

// Every profile, "generic" first.
const std::vector<CpuProfile>& cpu_profiles();
std::vector<std::string> cpu_profile_names();
// The named profile, or nullptr.
const CpuProfile* find_cpu_profile(const std::string& name);

// The CPU this process runs on.
CpuIdentity detect_cpu();

// The profile for a CPU: a pure function of what CPUID says, so that the
// mapping can be tested for CPUs we do not have. It never picks a profile
// whose target the flags rule out.
const CpuProfile& profile_for(const CpuIdentity& cpu);

}  // namespace rs
