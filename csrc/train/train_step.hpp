// A whole training step in one call: forward through every layer, the loss,
// backward, and the optimizer update, over workspaces allocated once and
// reused. Knows nothing of Python: parameters and optimizer state are plain
// float arrays owned by the caller, which keeps them alive.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel_set.hpp"

namespace rs {

struct TrainLayer {
  float* weight;  // (fan_in, fan_out)
  float* bias;    // (fan_out,)
  std::int64_t fan_in, fan_out;
  Activation activation;
  float negative_slope;
  // Optimizer state per parameter (null where the optimizer keeps none):
  // SGD uses *_state1 as velocity; Adam uses state1/state2 as its two moments.
  float* weight_state1;
  float* weight_state2;
  float* bias_state1;
  float* bias_state2;
  // Accumulates the firing counts of this (hidden) layer across steps when
  // monitoring is on; null for the output layer.
  std::int64_t* firing_counts;
  // Accumulates, per unit j, sum_k |dL/dw_kj| + |dL/db_j| across steps when
  // gradient tracking is on; null for the output layer.
  double* gradient_magnitude;
};

enum class LossKind : int { cross_entropy = 0, mse = 1 };
enum class OptimizerKind : int { sgd = 0, adam = 1 };

struct OptimizerSettings {
  OptimizerKind kind;
  float lr, momentum, weight_decay;
  bool nesterov;
  float beta1, beta2, eps;
  std::int64_t adam_step;  // 1-based number of this update
};

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

enum class StepStatus : int {
  ok = 0,
  loss_not_finite = 1,
  update_not_finite = 2,
  x_not_finite = 3,
  targets_not_finite = 4,
};

struct StepResult {
  double loss;
  std::int64_t correct;  // argmax hits (cross-entropy), before the update
  StepStatus status;
};

class TrainStep {
 public:
  TrainStep(std::vector<TrainLayer> layers, LossKind loss);
  // Runs the step with the GIL released by the caller. On any status but ok,
  // no parameter or optimizer state has been written.
  // monitor: count firings in the forward pass; track_gradients: accumulate
  // each hidden unit's gradient magnitude (one extra read of grad_weight).
  StepResult run(const Batch& batch, const OptimizerSettings& opt, bool monitor,
                 bool track_gradients, int n_threads);

 private:
  void reserve(std::int64_t n);
  void gather(const Batch& batch);
  void accumulate_gradient_magnitude(std::size_t layer);
  bool update(const OptimizerSettings& opt, bool commit, int n_threads);

  std::vector<TrainLayer> layers_;
  LossKind loss_;
  std::int64_t capacity_ = 0;
  std::int64_t n_outputs_;
  // Workspaces, sized for `capacity_` rows on first use and reused.
  std::vector<float> x_rows_, target_rows_;
  std::vector<std::int64_t> label_rows_;
  std::vector<std::vector<float>> pre_, out_, grad_pre_;
  std::vector<float> grad_a_, grad_b_;  // ping-pong d loss / d layer output
  std::vector<float> column_sums_;
  std::vector<std::vector<float>> grad_weight_, grad_bias_;
};

}  // namespace rs
