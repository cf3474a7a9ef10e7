// The table of experiment kernels that one instruction-set target provides:
// whole computations of one experiment, kept apart from the layer kernels
// (kernel_set.hpp) that training and scans use. Same rules: plain pointers,
// sizes checked by the caller, no throwing.
#pragma once

#include <cstdint>

namespace rs {

// Many small random ReLU networks, each run on the same points, for the
// born-dead Monte Carlo. Network r has `depth` hidden layers of `width` ReLU
// units: layer 1 maps the n_inputs features with first_weight[r] (n_inputs,
// width), layer l > 1 uses weights[r][l - 2] (width, width); biases[r][l - 1]
// (width,). For each network the kernel writes the first hidden layer (from 1;
// depth + 1 when none) at which
//   dead_at:          the layer's verdict is dead_by_sign (layer_verdict.hpp) on
//                     all the points;
//   constant_at:      the layer's output is the same (bitwise) at every point,
//                     so the network's output is constant from there on (this
//                     includes dead masks and underflow);
//   dead_at_point:    the verdict is dead_by_sign at the point x[reference_point].
// A network stops being run once its mask is dead.
struct RandomNetworksArgs {
  std::int64_t n_networks, n_points, n_inputs, width, depth;
  const float* x;             // (n_points, n_inputs)
  const float* first_weight;  // (n_networks, n_inputs, width)
  const float* weights;       // (n_networks, depth - 1, width, width)
  const float* biases;        // (n_networks, depth, width)
  std::int64_t reference_point;
  std::int32_t* dead_at;
  std::int32_t* constant_at;
  std::int32_t* dead_at_point;
};

struct ExperimentKernelSet {
  const char* name;
  void (*random_networks)(const RandomNetworksArgs&, int n_threads);
};

const ExperimentKernelSet* experiment_kernel_set_portable();
#if defined(RELUSCOPE_X86)
const ExperimentKernelSet* experiment_kernel_set_avx2();
const ExperimentKernelSet* experiment_kernel_set_avx512();
#endif

}  // namespace rs
