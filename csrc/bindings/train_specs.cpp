#include "bindings/train_specs.hpp"

#include <algorithm>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "runtime/threads.hpp"

namespace rs {
namespace {

template <class T>
T* optional_data(std::optional<py::array_t<T, py::array::c_style>>& array, const char* name,
                 py::ssize_t size) {
  if (!array) return nullptr;
  if (array->size() != size)
    throw py::value_error(std::string(name) + " has " + std::to_string(array->size()) +
                          " elements, expected " + std::to_string(size));
  return mutable_data(*array, name);
}

// Checks one parameter's optimizer buffers (cohort ids are checked per run).
void check_state(ParamStateSpec& spec, ParamState& state, py::ssize_t size) {
  state.velocity = optional_data(spec.velocity, "velocity", size);
  state.first_moment = optional_data(spec.first_moment, "first_moment", size);
  state.second_moment = optional_data(spec.second_moment, "second_moment", size);
  if (static_cast<bool>(state.first_moment) != static_cast<bool>(state.second_moment))
    throw py::value_error("first_moment and second_moment go together");
  if (spec.cohort) {
    if (spec.cohort->size() != size) throw py::value_error("cohort ids have the wrong size");
    state.cohort = spec.cohort->data();
  }
}

// The largest cohort id in `ids` plus one; ValueError for a negative id.
std::int64_t cohort_bound(const Int32Array& ids) {
  const std::int32_t* id = ids.data();
  std::int32_t largest = -1, smallest = 0;
  for (py::ssize_t i = 0; i < ids.size(); ++i) {
    largest = std::max(largest, id[i]);
    smallest = std::min(smallest, id[i]);
  }
  if (smallest < 0) throw py::value_error("cohort ids must be >= 0");
  return std::int64_t{largest} + 1;
}

template <class T>
void add_fingerprint(std::vector<ArrayFingerprint>& prints,
                     const std::optional<py::array_t<T, py::array::c_style>>& array,
                     const std::string& name) {
  if (!array) return;
  std::vector<py::ssize_t> shape(array->shape(), array->shape() + array->ndim());
  prints.push_back({*array, array->data(), std::move(shape), name});
}

std::string layer_name(std::size_t i) { return "layer " + std::to_string(i) + " "; }

UnitBuffers check_units(UnitBuffersSpec& spec, py::ssize_t fan_out) {
  UnitBuffers units;
  units.firing_counts = optional_data(spec.firing_counts, "firing_counts", fan_out);
  units.gradient_magnitude = optional_data(spec.gradient_magnitude, "gradient_magnitude", fan_out);
  if (spec.last_firing) {
    require_shape(*spec.last_firing, "last_firing", {fan_out, last_firing::kFields});
    if (!units.firing_counts) throw py::value_error("last_firing needs firing_counts");
    units.last_firing = mutable_data(*spec.last_firing, "last_firing");
  }
  return units;
}

}  // namespace

TrainStepHandle::TrainStepHandle(std::vector<LayerSpec> specs, LossKind loss)
    : specs_(std::move(specs)), loss_(loss) {
  if (specs_.empty()) throw py::value_error("a model needs at least one layer");
  std::vector<TrainLayer> layers;
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    LayerSpec& spec = specs_[i];
    require_ndim(spec.weight, "weight", 2);
    const py::ssize_t fan_in = spec.weight.shape(0), fan_out = spec.weight.shape(1);
    if (fan_in < 1 || fan_out < 1)
      throw py::value_error(layer_name(i) + "weight has shape " + shape_string(spec.weight) +
                            ": every layer needs at least one input and one unit");
    if (i > 0 && fan_in != layers.back().fan_out)
      throw py::value_error("layer " + std::to_string(i) + " has " + std::to_string(fan_in) +
                            " inputs but layer " + std::to_string(i - 1) + " has " +
                            std::to_string(layers.back().fan_out) + " outputs");
    require_shape(spec.bias, "bias", {fan_out});
    TrainLayer layer{mutable_data(spec.weight, "weight"),
                     mutable_data(spec.bias, "bias"),
                     fan_in,
                     fan_out,
                     spec.activation,
                     spec.negative_slope,
                     {},
                     {},
                     {}};
    check_state(spec.weight_state, layer.weight_state, fan_in * fan_out);
    check_state(spec.bias_state, layer.bias_state, fan_out);
    for (const ParamState* state : {&layer.weight_state, &layer.bias_state}) {
      every_velocity_ = every_velocity_ && state->velocity;
      every_moment_ = every_moment_ && state->first_moment;
    }
    layer.units = check_units(spec.units, fan_out);
    layers.push_back(layer);
  }
  n_features_ = layers.front().fan_in;
  n_outputs_ = layers.back().fan_out;
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const LayerSpec& spec = specs_[i];
    const std::string layer = layer_name(i);
    add_fingerprint<float>(fingerprints_, spec.weight, layer + "weight");
    add_fingerprint<float>(fingerprints_, spec.bias, layer + "bias");
    for (const auto& [state, param] :
         {std::pair{&spec.weight_state, "weight "}, std::pair{&spec.bias_state, "bias "}}) {
      add_fingerprint<float>(fingerprints_, state->velocity, layer + param + "velocity");
      add_fingerprint<float>(fingerprints_, state->first_moment, layer + param + "first_moment");
      add_fingerprint<float>(fingerprints_, state->second_moment, layer + param + "second_moment");
      add_fingerprint<std::int32_t>(fingerprints_, state->cohort, layer + param + "cohort");
    }
    add_fingerprint<std::int64_t>(fingerprints_, spec.units.firing_counts, layer + "firing_counts");
    add_fingerprint<double>(fingerprints_, spec.units.gradient_magnitude,
                            layer + "gradient_magnitude");
    add_fingerprint<double>(fingerprints_, spec.units.last_firing, layer + "last_firing");
  }
  step_ = std::make_unique<TrainStep>(std::move(layers), loss_);
}

void TrainStepHandle::check_arrays_unchanged() const {
  for (const ArrayFingerprint& print : fingerprints_) {
    const py::array& a = print.array;
    const bool same_shape = a.ndim() == static_cast<py::ssize_t>(print.shape.size()) &&
                            std::equal(print.shape.begin(), print.shape.end(), a.shape());
    if (a.data() != print.data || !same_shape)
      throw py::value_error(print.name + " was reallocated or reshaped in place (shape now " +
                            shape_string(a) + ") after this TrainStep was built; build a new one");
    if (!a.writeable() || !(a.flags() & py::array::c_style))
      throw py::value_error(print.name +
                            " is no longer a writeable C-contiguous array; build a new TrainStep");
  }
}

std::int64_t TrainStepHandle::cohort_ids_bound() const {
  std::int64_t bound = 0;
  for (const LayerSpec& spec : specs_)
    for (const ParamStateSpec* state : {&spec.weight_state, &spec.bias_state})
      if (state->cohort) bound = std::max(bound, cohort_bound(*state->cohort));
  return bound;
}

std::unique_lock<std::mutex> TrainStepHandle::lock_running() {
  std::unique_lock<std::mutex> lock(running_, std::try_to_lock);
  if (!lock.owns_lock()) {
    // Another thread's step is running: wait without the GIL, which that
    // step's caller needs to return.
    py::gil_scoped_release release;
    lock.lock();
  }
  return lock;
}

Batch TrainStepHandle::checked_batch(const BatchSpec& spec) const {
  const FloatArray& x = spec.x;
  require_ndim(x, "x", 2);
  if (x.shape(1) != n_features_)
    throw py::value_error("x has " + std::to_string(x.shape(1)) +
                          " features but the first layer expects " + std::to_string(n_features_));
  const py::ssize_t n_rows = x.shape(0);
  Batch batch{x.data(), n_rows, nullptr, nullptr, nullptr, spec.check_values};
  if (spec.rows) {
    require_ndim(*spec.rows, "rows", 1);
    batch.rows = spec.rows->data();
    batch.n = spec.rows->shape(0);
    for (py::ssize_t i = 0; i < batch.n; ++i)
      if (batch.rows[i] < 0 || batch.rows[i] >= n_rows)
        throw py::value_error("row index " + std::to_string(batch.rows[i]) + " is outside [0, " +
                              std::to_string(n_rows) + ")");
  }
  if (batch.n == 0) throw py::value_error("the batch is empty");
  if (loss_ == LossKind::cross_entropy) {
    if (!spec.labels) throw py::value_error("cross-entropy needs integer labels");
    require_shape(*spec.labels, "labels", {n_rows});
    batch.labels = spec.labels->data();
    for (py::ssize_t i = 0; i < batch.n; ++i) {
      const std::int64_t y = batch.labels[batch.rows ? batch.rows[i] : i];
      if (y < 0 || y >= n_outputs_)
        throw py::value_error("y has label " + std::to_string(y) + ", outside [0, " +
                              std::to_string(n_outputs_) + ") for a model with " +
                              std::to_string(n_outputs_) + " outputs");
    }
  } else {
    if (!spec.targets) throw py::value_error("mse needs float targets");
    require_shape(*spec.targets, "targets", {n_rows, n_outputs_});
    batch.targets = spec.targets->data();
  }
  return batch;
}

OptimizerSettings TrainStepHandle::checked_optimizer(const OptimizerSettingsSpec& spec) const {
  OptimizerSettings settings = spec;
  if (settings.kind == OptimizerKind::adam && settings.update_number < 1)
    throw py::value_error("update_number must be >= 1");
  // The kernels write through these buffers: a missing one is refused here.
  if (settings.kind == OptimizerKind::adam && !every_moment_)
    throw py::value_error("Adam needs first_moment and second_moment for every parameter");
  if (settings.kind == OptimizerKind::sgd && settings.momentum > 0.0f && !every_velocity_)
    throw py::value_error("SGD with momentum needs a velocity for every parameter");
  if (!(settings.clip_norm >= 0.0f)) throw py::value_error("clip_norm must be >= 0");
  settings.cohort_start = nullptr;
  settings.n_cohorts = 0;
  if (spec.cohort_start_array) {
    const Int64Array& starts = *spec.cohort_start_array;
    require_ndim(starts, "cohort_start", 1);
    settings.n_cohorts = starts.shape(0);
    settings.cohort_start = starts.data();
    for (std::int64_t c = 0; c < settings.n_cohorts; ++c)
      if (settings.cohort_start[c] < 0 || settings.cohort_start[c] >= settings.update_number)
        throw py::value_error("cohort_start must lie in [0, update_number)");
    if (cohort_ids_bound() > settings.n_cohorts)
      throw py::value_error("an element names a cohort beyond cohort_start");
  }
  return settings;
}

StepResult TrainStepHandle::run(const BatchSpec& batch_spec, const StepSettingsSpec& spec) {
  // Copies hold their own references to the arrays: another thread may assign
  // batch.rows or settings while the GIL is released below.
  return run_held(BatchSpec(batch_spec), StepSettingsSpec(spec));
}

StepResult TrainStepHandle::run_whole_batch(const py::object& x, const py::object& targets,
                                            const OptimizerSettingsSpec& optimizer,
                                            std::int64_t step_number) {
  BatchSpec batch{exact_array<float>(x, "x"), std::nullopt, std::nullopt, std::nullopt, true};
  if (loss_ == LossKind::cross_entropy)
    batch.labels = exact_array<std::int64_t>(targets, "labels");
  else
    batch.targets = exact_array<float>(targets, "targets");
  return run_held(std::move(batch), StepSettingsSpec{optimizer, step_number});
}

StepResult TrainStepHandle::run_held(BatchSpec held_batch, StepSettingsSpec held_settings) {
  const std::unique_lock<std::mutex> running = lock_running();
  check_arrays_unchanged();
  if (held_settings.step_number < 1)
    throw py::value_error("step_number must be >= 1, got " +
                          std::to_string(held_settings.step_number));
  const Batch batch = checked_batch(held_batch);
  const StepSettings settings{checked_optimizer(held_settings.optimizer),
                              held_settings.step_number};
  py::gil_scoped_release release;  // safe: no Python object is touched below
  return step_->run(batch, settings, num_threads());
}

void TrainStepHandle::flush_last_firing() {
  const std::unique_lock<std::mutex> running = lock_running();
  check_arrays_unchanged();
  py::gil_scoped_release release;  // safe: no Python object is touched below
  step_->flush_last_firing();
}

void TrainStepHandle::release_workspaces() {
  const std::unique_lock<std::mutex> running = lock_running();
  step_->release();
#if defined(__GLIBC__)
  // glibc raises its mmap threshold after large frees, so later workspaces of
  // tens of MB come from the heap and stay with the process when freed;
  // trimming hands them back to the system, which is what release() is for.
  malloc_trim(0);
#endif
}

}  // namespace rs
