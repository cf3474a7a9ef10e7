// The body of one instruction-set target. A target file defines
//   RS_TARGET_NAME, RS_VECTOR_BYTES, RS_MR, RS_NR, RS_MC_PANELS (and may define
//   RS_KC; both give the default GEMM blocking, see gemm_driver.inl)
// and includes this file; everything lands in an anonymous namespace, so the
// targets (compiled with different flags) share no symbol that the linker
// could merge, and only the returned tables are visible.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <new>

#include "kernels/experiment_kernel_set.hpp"
#include "kernels/kernel_set.hpp"
#include "kernels/layer_verdict.hpp"
#include "runtime/memory_spans.hpp"
#include "runtime/worker_pool.hpp"

namespace rs {
namespace {

// clang-format off: each .inl uses what the ones above it define, so the order is the
// dependency order, not the alphabet.
#include "kernels/common.inl"
#include "kernels/gemm_pack.inl"
#include "kernels/gemm_microkernel.inl"
#include "kernels/gemm_driver.inl"
#include "kernels/dense.inl"
#include "kernels/loss.inl"
#include "kernels/optim.inl"
#include "kernels/random_networks.inl"
// clang-format on

const KernelSet kKernels = {
    RS_TARGET_NAME,
    gemm,
    dense_forward,
    dense_forward_layers,
    dense_backward,
    dense_backward_layers,
    softmax_cross_entropy,
    mean_squared_error,
    sgd_update,
    adam_update,
    elementwise_threads,
    use_gemm_tuning,
    gemm_tuning,
};

const ExperimentKernelSet kExperimentKernels = {RS_TARGET_NAME, random_networks};

}  // namespace
}  // namespace rs
