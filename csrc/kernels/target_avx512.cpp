// AVX-512 target (compiled with -mavx512f/dq/bw/vl, CMakeLists.txt).
// 16-float vectors; an 8 x 32 register tile (16 of the 32 zmm registers). Measured
// against 12 x 32 and 14 x 32, interleaved: 1024^3 on 2 threads 469-476 vs
// 457-466 and 439-445 GFLOP/s; the medium training step 11.5-11.9 vs 11.8-12.2 ms.
#define RS_TARGET_NAME "avx512"
#define RS_VECTOR_BYTES 64
#define RS_MR 8
#define RS_NR 32
#define RS_MC_PANELS 18
#include "kernels/target_body.inl"

namespace rs {
const KernelSet* kernel_set_avx512() { return &kKernels; }
const ExperimentKernelSet* experiment_kernel_set_avx512() { return &kExperimentKernels; }
}  // namespace rs
