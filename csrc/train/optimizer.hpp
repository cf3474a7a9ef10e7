// The optimizer update inside the training step: which optimizer, its
// hyper-parameters for one update, its buffers per parameter, and the one
// function that applies it. Adding an optimizer means a kernel (optim.inl and
// its entry in kernel_set.hpp), a name in RS_OPTIMIZER_KINDS with its
// hyper-parameters below, and a case in update_parameter.
#pragma once

#include <cstdint>

#include "kernels/kernel_set.hpp"

namespace rs {

// Every optimizer the step knows, by name; the binding builds its enum from this list.
#define RS_OPTIMIZER_KINDS(X) X(sgd) X(adam)

enum class OptimizerKind : int {
#define RS_OPTIMIZER_ENUM_VALUE(name) name,
  RS_OPTIMIZER_KINDS(RS_OPTIMIZER_ENUM_VALUE)
#undef RS_OPTIMIZER_ENUM_VALUE
};

// Hyper-parameters of one update. Fields an optimizer does not use are ignored.
struct OptimizerSettings {
  OptimizerKind kind = OptimizerKind::sgd;
  float lr = 0.01f;  // of this update (warmup already applied)
  float weight_decay = 0.0f;
  float momentum = 0.0f;                            // SGD
  bool nesterov = false;                            // SGD
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // Adam
  // Gradient-norm clipping: when > 0 and the global L2 norm of all the
  // gradients exceeds it, every gradient is scaled by clip_norm / (norm + 1e-6)
  // before the update (PyTorch's clip_grad_norm_ rule).
  float clip_norm = 0.0f;
  std::int64_t update_number = 1;  // 1-based number of this update (Adam's bias correction)
  // Adam moment cohorts (see AdamArgs): cohort c restarted after update
  // cohort_start[c]; null when no moment was ever reset.
  const std::int64_t* cohort_start = nullptr;
  std::int64_t n_cohorts = 0;
};

// The optimizer's buffers of one parameter, each shaped like it; null where
// the optimizer keeps none.
struct ParamState {
  float* velocity = nullptr;             // SGD (used when momentum > 0)
  float* first_moment = nullptr;         // Adam
  float* second_moment = nullptr;        // Adam
  const std::int32_t* cohort = nullptr;  // Adam: cohort id per element, or null
};

struct ParamUpdate {
  float* value;
  const float* grad;
  std::int64_t size;
  const ParamState* state;
  // Per-column statistics of the committed update, for death tracking; or null.
  const ColumnUpdateStats* column_stats;
};

// Checks (commit == false: nothing written) or applies the update of one
// parameter; returns whether every new value is finite.
bool update_parameter(const KernelSet& kernels, const OptimizerSettings& settings,
                      const ParamUpdate& param, bool commit, int n_threads);

}  // namespace rs
