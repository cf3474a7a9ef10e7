// The Python-facing descriptions of a training step: named classes that hold
// the numpy arrays the step writes (so they outlive it) and turn into the
// plain structs of csrc/train/. Checked here, before any kernel runs.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bindings/pybind.hpp"
#include "train/train_step.hpp"

namespace rs {

// An optimizer's buffers for one parameter (see rs::ParamState).
struct ParamStateSpec {
  std::optional<FloatArray> velocity, first_moment, second_moment;
  std::optional<Int32Array> cohort;
};

// A hidden layer's per-unit statistics buffers (see rs::UnitBuffers).
struct UnitBuffersSpec {
  std::optional<Int64Array> firing_counts;
  std::optional<DoubleArray> gradient_magnitude, last_firing;
};

struct LayerSpec {
  FloatArray weight, bias;
  Activation activation;
  float negative_slope;
  ParamStateSpec weight_state, bias_state;
  UnitBuffersSpec units;
};

// OptimizerSettings plus the cohort_start array its pointer refers to.
struct OptimizerSettingsSpec : OptimizerSettings {
  std::optional<Int64Array> cohort_start_array;
};

struct StepSettingsSpec {
  OptimizerSettingsSpec optimizer;
  std::int64_t step_number;
};

struct BatchSpec {
  FloatArray x;
  std::optional<Int64Array> rows, labels;
  std::optional<FloatArray> targets;
  bool check_values;
};

// What one array the step writes looked like when the step was built. The
// step keeps raw pointers; an in-place ndarray.resize(refcheck=False) moves
// the data (and may change the shape) under the same Python object, so every
// run compares the array with its fingerprint before any kernel runs.
struct ArrayFingerprint {
  py::array array;
  const void* data;
  std::vector<py::ssize_t> shape;
  std::string name;  // e.g. "layer 1 weight velocity"
};

// A TrainStep built from LayerSpecs, holding them (and so their arrays).
// Runs are serialized: a second thread waits (with the GIL released) for the
// first one's step to finish, so no workspace is shared and no update is lost.
class TrainStepHandle {
 public:
  TrainStepHandle(std::vector<LayerSpec> layers, LossKind loss);
  StepResult run(const BatchSpec& batch, const StepSettingsSpec& settings);
  // run on every row of x, its NaN/Inf checked: labels (cross-entropy) or
  // float targets (mse), as the step's loss takes. One call instead of the
  // three that build a Batch and a StepSettings (Trainer.step's path).
  StepResult run_whole_batch(const py::object& x, const py::object& targets,
                             const OptimizerSettingsSpec& optimizer, std::int64_t step_number);
  void flush_last_firing();
  void release_workspaces();

 private:
  // The run itself, on specs this call owns (their arrays cannot change under it).
  StepResult run_held(BatchSpec held_batch, StepSettingsSpec held_settings);
  Batch checked_batch(const BatchSpec& spec) const;
  OptimizerSettings checked_optimizer(const OptimizerSettingsSpec& spec) const;
  void check_arrays_unchanged() const;
  // 1 + the largest cohort id of any parameter, read now: the ids are plain
  // arrays the caller may edit between steps.
  std::int64_t cohort_ids_bound() const;
  std::unique_lock<std::mutex> lock_running();

  std::vector<LayerSpec> specs_;
  std::vector<ArrayFingerprint> fingerprints_;
  std::unique_ptr<TrainStep> step_;
  std::mutex running_;
  LossKind loss_;
  std::int64_t n_features_ = 0, n_outputs_ = 0;
  // Whether every parameter has the buffers of each optimizer (checked per
  // step, since the optimizer is named by the step's settings).
  bool every_velocity_ = true, every_moment_ = true;
};

}  // namespace rs
