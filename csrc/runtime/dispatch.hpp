// Run-time choice of the kernel set and its GEMM tuning. When the module loads,
// the CPU profile detected for this CPU (cpu_profile.hpp) picks both; the
// caller may then name another profile (RELUSCOPE_CPU_PROFILE) or another
// target (RELUSCOPE_SIMD). A target that is not the profile's runs with its
// default tuning.
#pragma once

#include <string>
#include <vector>

#include "kernels/experiment_kernel_set.hpp"
#include "kernels/kernel_set.hpp"

namespace rs {

// The kernel tables in use (of one target). Valid from module load on.
const KernelSet& kernels();
const ExperimentKernelSet& experiment_kernels();

// Targets compiled into this build, lowest first.
std::vector<std::string> compiled_targets();
// Compiled targets this CPU (and OS) can run, lowest first.
std::vector<std::string> supported_targets();
// The best supported target.
std::string best_target();
// Switches to a target. Throws std::invalid_argument for a name that is not
// compiled in, std::runtime_error for one this CPU cannot run.
void select_target(const std::string& name);
std::string selected_target();
// The GEMM tuning of the target in use.
const GemmTuning& gemm_tuning_in_use();
// Replaces the GEMM tuning of the target in use until the next selection of a
// target or profile: for measuring a tuning before a profile adopts it, and
// for tests of unusual blockings. A kc other than the profile's changes the
// summation order. Throws std::invalid_argument for a tuning the driver
// cannot run (nc must be a multiple of every target's NR).
void set_gemm_tuning(const GemmTuning& tuning);

// Switches to a CPU profile: its target and, for that target, its GEMM tuning.
// Throws std::invalid_argument for an unknown name, std::runtime_error for a
// profile whose target this CPU cannot run.
void select_cpu_profile(const std::string& name);
std::string selected_cpu_profile();
// The profile chosen for this CPU when the module loaded.
std::string detected_cpu_profile();

}  // namespace rs
