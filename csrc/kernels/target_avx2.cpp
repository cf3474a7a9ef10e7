// AVX2 + FMA target (compiled with -mavx2 -mfma, CMakeLists.txt).
// 8-float vectors; a 6 x 16 register tile uses 12 of the 16 ymm registers.
#define RS_TARGET_NAME "avx2"
#define RS_VECTOR_BYTES 32
#define RS_MR 6
#define RS_NR 16
#define RS_MC_PANELS 16
#include "kernels/target_body.inl"

namespace rs {
const KernelSet* kernel_set_avx2() { return &kKernels; }
const ExperimentKernelSet* experiment_kernel_set_avx2() { return &kExperimentKernels; }
}  // namespace rs
