// Portable target: the baseline instruction set of the compiler's default
// (SSE2 on x86-64), always built. 4-float vectors; a 4 x 8 register tile.
#define RS_TARGET_NAME "portable"
#define RS_VECTOR_BYTES 16
#define RS_MR 4
#define RS_NR 8
#define RS_MC_PANELS 24
#include "kernels/target_body.inl"

namespace rs {
const KernelSet* kernel_set_portable() { return &kKernels; }
const ExperimentKernelSet* experiment_kernel_set_portable() { return &kExperimentKernels; }
}  // namespace rs
