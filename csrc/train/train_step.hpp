// A whole training step in one call: forward through every layer, the loss,
// backward, and the optimizer update, over workspaces allocated once and
// reused. Knows nothing of Python: parameters, optimizer state and per-unit
// statistics are plain arrays owned by the caller, which keeps them alive.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/kernel_set.hpp"
#include "train/death_tracker.hpp"
#include "train/optimizer.hpp"
#include "train/unit_buffers.hpp"

namespace rs {

struct TrainLayer {
  float* weight;  // (fan_in, fan_out)
  float* bias;    // (fan_out,)
  std::int64_t fan_in, fan_out;
  Activation activation;
  float negative_slope;
  ParamState weight_state, bias_state;
  UnitBuffers units;  // all null for the output layer
};

enum class LossKind : int { cross_entropy = 0, mse = 1 };

// One batch. Rows of x (and of the targets) are either the first n rows or,
// when `rows` is non-null, rows[0..n) of the full arrays (a shuffled batch,
// gathered here so the caller never copies).
struct Batch {
  const float* x;
  std::int64_t n;
  const std::int64_t* rows;
  const std::int64_t* labels;  // cross-entropy
  const float* targets;        // mse, (rows, n_outputs)
  bool check_values;           // refuse NaN/Inf in x and targets first
};

struct StepSettings {
  OptimizerSettings optimizer;
  std::int64_t step_number = 1;  // the trainer's 1-based step count, for last_firing
};

enum class StepStatus : int {
  ok = 0,
  loss_not_finite = 1,
  update_not_finite = 2,
  x_not_finite = 3,
  targets_not_finite = 4,
};

struct StepResult {
  double loss = 0.0;
  std::int64_t correct = 0;  // argmax hits (cross-entropy), before the update
  StepStatus status = StepStatus::ok;
  double grad_norm = NAN;  // global L2 norm of the gradients before clipping; NaN unless clipping
};

class TrainStep {
 public:
  TrainStep(std::vector<TrainLayer> layers, LossKind loss);
  // Runs the step with the GIL released by the caller. On any status but ok,
  // no parameter or optimizer state has been written. Each hidden layer's
  // non-null UnitBuffers are filled as they describe.
  StepResult run(const Batch& batch, const StepSettings& settings, int n_threads);
  // Writes last_firing for every unit that fired in the latest step (rows are
  // otherwise written when a unit stops firing) and the rows' layer medians.
  void flush_last_firing() { deaths_.flush(); }
  // Frees the batch-sized workspaces (the next run allocates them again).
  void release();

 private:
  void reserve(std::int64_t n);
  // Every layer's pre-activations and outputs for the n rows of x; returns the outputs.
  const float* forward(const float* x, std::int64_t n, int n_threads);
  // Every parameter's gradient, from d loss / d outputs in grad_a_.
  void backward(const float* x, std::int64_t n, int n_threads);
  void gather(const Batch& batch);
  void accumulate_gradient_magnitude(std::size_t layer);
  // Scales every gradient so that their global norm is at most clip_norm; returns the norm.
  double clip_gradients(float clip_norm);
  // Checks (commit == false) or applies the update of every parameter; death
  // tracking sees each committed layer update.
  bool update(const StepSettings& settings, bool commit, int n_threads);
  // Every parameter's update, in layer order (weight, then bias); to commit,
  // each weight with its layer's column statistics from death tracking.
  const std::vector<ParamUpdate>& parameter_updates(bool commit);
  // The updates of `params` (`total` elements) on `threads` threads, whole
  // parameters per thread.
  bool update_side_by_side(const OptimizerSettings& settings,
                           const std::vector<ParamUpdate>& params, std::int64_t total, bool commit,
                           int threads);

  std::vector<TrainLayer> layers_;
  LossKind loss_;
  DeathTracker deaths_;
  std::int64_t capacity_ = 0;
  std::int64_t n_outputs_;
  // No two parameters or optimizer buffers share memory (update_side_by_side may run).
  bool parameters_apart_;
  // Workspaces, sized for `capacity_` rows on first use and reused.
  std::vector<float> x_rows_, target_rows_;
  std::vector<std::int64_t> label_rows_;
  std::vector<std::vector<float>> pre_, out_, grad_pre_;
  std::vector<float> grad_a_, grad_b_;  // ping-pong d loss / d layer output
  std::vector<float> column_sums_;
  std::vector<std::vector<float>> grad_weight_, grad_bias_;
  std::vector<ParamUpdate> updates_;                // parameter_updates' list, reused
  std::vector<DenseForwardArgs> forward_layers_;    // forward's list, reused
  std::vector<DenseBackwardArgs> backward_layers_;  // backward's list, reused
};

}  // namespace rs
