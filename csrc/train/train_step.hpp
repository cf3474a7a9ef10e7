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
  // Adam only, null unless some moments were reset part-way (see AdamArgs):
  // the cohort of each element of the weight and of the bias.
  const std::int32_t* weight_cohort;
  const std::int32_t* bias_cohort;
  // Accumulates the firing counts of this (hidden) layer across steps when
  // monitoring is on; null for the output layer.
  std::int64_t* firing_counts;
  // Accumulates, per unit j, sum_k |dL/dw_kj| + |dL/db_j| across steps when
  // gradient tracking is on; null for the output layer.
  double* gradient_magnitude;
  // With death tracking on: row j (kLastFiringFields doubles) describes the
  // last step in which unit j fired on its training batch and the update made
  // right after it (see LastFiringField); null for the output layer.
  double* last_firing;
};

// Columns of TrainLayer::last_firing.
enum LastFiringField : int {
  kStep = 0,              // the step number
  kLearningRate,          // lr of that step's update
  kUpdateNorm,            // ||w_j(after) - w_j(before)|| over the incoming weights
  kBiasUpdate,            // b_j(after) - b_j(before)
  kRelativeUpdate,        // kUpdateNorm / ||w_j(before)||
  kLayerMedianUpdateNorm,  // medians over the layer's units, same step
  kLayerMedianBiasUpdate,  // (of |bias update|)
  kLayerMedianRelativeUpdate,
  kLastFiringFields
};

enum class LossKind : int { cross_entropy = 0, mse = 1 };
enum class OptimizerKind : int { sgd = 0, adam = 1 };

struct OptimizerSettings {
  OptimizerKind kind;
  float lr, momentum, weight_decay;
  bool nesterov;
  float beta1, beta2, eps;
  std::int64_t adam_step;  // 1-based number of this update
  std::int64_t step_number;  // the trainer's 1-based step count, for last_firing
  // Gradient-norm clipping: when > 0 and the global L2 norm of all the
  // gradients exceeds it, every gradient is scaled by clip_norm / (norm + 1e-6)
  // before the update (PyTorch's clip_grad_norm_ rule).
  float clip_norm;
  // Adam moment cohorts (see AdamArgs); null when there are none.
  const std::int64_t* cohort_start;
  std::int64_t n_cohorts;
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
  double grad_norm;  // global L2 norm of the gradients before clipping; NaN unless clipping
};

class TrainStep {
 public:
  TrainStep(std::vector<TrainLayer> layers, LossKind loss);
  // Runs the step with the GIL released by the caller. On any status but ok,
  // no parameter or optimizer state has been written.
  // monitor: count firings in the forward pass; track_gradients: accumulate
  // each hidden unit's gradient magnitude (one extra read of grad_weight).
  // track_deaths (with monitor): fill last_firing for the units that fire.
  StepResult run(const Batch& batch, const OptimizerSettings& opt, bool monitor,
                 bool track_gradients, bool track_deaths, int n_threads);
  // Writes last_firing for every unit that fired in the latest tracked step
  // (rows are otherwise written when a unit stops firing).
  void flush_last_firing();

 private:
  void reserve(std::int64_t n);
  void gather(const Batch& batch);
  void accumulate_gradient_magnitude(std::size_t layer);
  // Scales every gradient so that their global norm is at most clip_norm; returns the norm.
  double clip_gradients(float clip_norm);
  // Checks (commit == false) or applies the update of every parameter; with
  // track_deaths, records last_firing for the tracked layers as it commits.
  bool update(const OptimizerSettings& opt, bool commit, bool track_deaths, int n_threads);
  void record_last_firing(std::size_t layer, const OptimizerSettings& opt);
  void note_firing(std::size_t layer);
  void write_rows(std::size_t layer, bool only_stopped);
  void resolve_medians(std::size_t layer);

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
  // Death tracking, per layer: firing counts before the step, the bias before
  // the update, per-unit update statistics.
  std::vector<std::vector<std::int64_t>> counts_before_;
  std::vector<std::vector<float>> bias_before_, delta_squared_, old_squared_;
  // One unit's update: ||dw_j||, db_j, ||dw_j|| / ||w_j(before)||.
  struct UnitUpdate {
    float norm, bias, relative;
  };
  // The latest tracked step of a layer: which units fired, and the raw
  // statistics of the update that followed. bias_before holds the biases before
  // that update; the current biases are those after it until the next update,
  // and rows are only written before it (in the forward pass, or at a flush).
  struct PendingFiring {
    bool valid = false;
    std::int64_t step = 0;
    float lr = 0.0f;
    std::vector<float> delta_squared, old_squared, bias_before;
    std::vector<char> fired;
    UnitUpdate unit(std::size_t j, const float* bias) const;
  };
  std::vector<PendingFiring> pending_;
  // Per-unit statistics of one step (|bias update| for the bias), kept while
  // some last_firing row of that step still lacks its layer medians.
  struct Snapshot {
    std::vector<float> update, bias_update, relative;
    int references = 0;
    bool has_medians = false;
    float medians[3] = {0.0f, 0.0f, 0.0f};
  };
  struct LayerSnapshots {
    std::vector<Snapshot> slots;
    std::vector<int> free;          // slots no row points at
    std::vector<int> row_snapshot;  // per unit: the slot its row points at, or -1
    int take(const PendingFiring& pending, const float* bias);
    void point(std::size_t unit, int id);
  };
  std::vector<LayerSnapshots> snapshots_;
  std::vector<std::vector<char>> fired_now_;  // per layer: fired in this step
  std::vector<std::vector<float>> grad_weight_, grad_bias_;
};

}  // namespace rs
