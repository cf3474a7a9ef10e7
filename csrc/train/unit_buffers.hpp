// Per-unit statistics of a hidden layer that the training step accumulates
// into arrays owned by the caller (reluscope.tracking.UnitStats on the Python
// side). A null buffer is not tracked. Adding a statistic means a buffer here,
// its keyword in the UnitBuffers binding (bind_train.cpp) and the code that fills it.
#pragma once

#include <cstdint>

namespace rs {

// Columns of UnitBuffers::last_firing, by name; the binding exports the names
// so that Python builds its record type from this one list.
#define RS_LAST_FIRING_FIELDS(X)                                    \
  X(step)                     /* the step number */                 \
  X(lr)                       /* lr of that step's update */        \
  X(update_norm)              /* ||w_j(after) - w_j(before)|| */    \
  X(bias_update)              /* b_j(after) - b_j(before) */        \
  X(relative_update)          /* update_norm / ||w_j(before)|| */   \
  X(layer_median_update_norm) /* medians over the layer's units, */ \
  X(layer_median_bias_update) /* same step (of |bias_update|) */    \
  X(layer_median_relative_update)

namespace last_firing {
enum Field : int {
#define RS_LAST_FIRING_ENUM_VALUE(name) name,
  RS_LAST_FIRING_FIELDS(RS_LAST_FIRING_ENUM_VALUE)
#undef RS_LAST_FIRING_ENUM_VALUE
      kFields
};
}  // namespace last_firing

struct UnitBuffers {
  // Firing counts: += #{rows with pre-activation > 0} at every step.
  std::int64_t* firing_counts = nullptr;
  // += sum_k |dL/dw_kj| + |dL/db_j| at every step.
  double* gradient_magnitude = nullptr;
  // (fan_out, last_firing::kFields): the last step in which unit j fired on
  // its training batch and the update made right after it (DeathTracker).
  // Needs firing_counts.
  double* last_firing = nullptr;
};

}  // namespace rs
