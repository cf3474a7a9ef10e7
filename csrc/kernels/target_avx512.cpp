// AVX-512 target (compiled with -mavx512f/dq/bw/vl, CMakeLists.txt).
// 16-float vectors; a 12 x 32 register tile uses 24 of the 32 zmm registers.
#define RS_TARGET_NAME "avx512"
#define RS_VECTOR_BYTES 64
#define RS_MR 12
#define RS_NR 32
#define RS_MC_PANELS 12
#include "kernels/target_body.inl"

namespace rs {
const KernelSet* kernel_set_avx512() { return &kKernels; }
}  // namespace rs
