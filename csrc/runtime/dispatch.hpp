// Run-time choice of the kernel set: the best target the CPU supports, picked
// once when the module loads, or one named by the caller (RELUSCOPE_SIMD).
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

}  // namespace rs
