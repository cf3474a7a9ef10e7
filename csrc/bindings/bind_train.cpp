#include <algorithm>
#include <memory>

#include "bindings/pybind.hpp"
#include "runtime/threads.hpp"
#include "train/train_step.hpp"

namespace rs {
namespace {

// A TrainStep plus references to the numpy arrays it writes, so they outlive it.
class TrainStepHandle {
 public:
  TrainStepHandle(const py::list& weights, const py::list& biases, const py::list& activations,
                  const py::list& negative_slopes, int loss, const py::list& weight_states1,
                  const py::list& weight_states2, const py::list& bias_states1,
                  const py::list& bias_states2, const py::list& weight_cohorts,
                  const py::list& bias_cohorts, const py::list& firing_counts,
                  const py::list& gradient_magnitudes, const py::list& last_firing) {
    const std::size_t n_layers = weights.size();
    if (n_layers == 0) throw py::value_error("a model needs at least one layer");
    for (const py::list* list : {&biases, &activations, &negative_slopes, &weight_states1,
                                 &weight_states2, &bias_states1, &bias_states2, &weight_cohorts,
                                 &bias_cohorts, &firing_counts,
                                 &gradient_magnitudes, &last_firing})
      if (list->size() != n_layers) throw py::value_error("one entry per layer is needed in every list");
    if (loss != 0 && loss != 1) throw py::value_error("unknown loss code " + std::to_string(loss));
    loss_ = static_cast<LossKind>(loss);
    std::vector<TrainLayer> layers;
    for (std::size_t i = 0; i < n_layers; ++i) {
      auto weight = keep<FloatArray>(weights[i], "weight");
      require_ndim(weight, "weight", 2);
      const py::ssize_t fan_in = weight.shape(0), fan_out = weight.shape(1);
      if (i > 0 && fan_in != layers.back().fan_out)
        throw py::value_error("layer " + std::to_string(i) + " has " + std::to_string(fan_in) +
                              " inputs but layer " + std::to_string(i - 1) + " has " +
                              std::to_string(layers.back().fan_out) + " outputs");
      auto bias = keep<FloatArray>(biases[i], "bias");
      require_shape(bias, "bias", {fan_out});
      const int code = activations[i].cast<int>();
      if (code < 0 || code > 2) throw py::value_error("unknown activation code " + std::to_string(code));
      TrainLayer layer{mutable_data(weight, "weight"),
                       mutable_data(bias, "bias"),
                       fan_in,
                       fan_out,
                       static_cast<Activation>(code),
                       negative_slopes[i].cast<float>(),
                       state(weight_states1[i], fan_in * fan_out),
                       state(weight_states2[i], fan_in * fan_out),
                       state(bias_states1[i], fan_out),
                       state(bias_states2[i], fan_out),
                       cohort(weight_cohorts[i], fan_in * fan_out),
                       cohort(bias_cohorts[i], fan_out),
                       nullptr,
                       nullptr,
                       nullptr};
      if (!firing_counts[i].is_none()) {
        auto counts = keep<Int64Array>(firing_counts[i], "firing_counts");
        require_shape(counts, "firing_counts", {fan_out});
        layer.firing_counts = mutable_data(counts, "firing_counts");
      }
      if (!gradient_magnitudes[i].is_none()) {
        auto magnitude = keep<py::array_t<double, py::array::c_style>>(gradient_magnitudes[i],
                                                                       "gradient_magnitude");
        require_shape(magnitude, "gradient_magnitude", {fan_out});
        layer.gradient_magnitude = mutable_data(magnitude, "gradient_magnitude");
      }
      if (!last_firing[i].is_none()) {
        auto record = keep<py::array_t<double, py::array::c_style>>(last_firing[i], "last_firing");
        require_shape(record, "last_firing", {fan_out, kLastFiringFields});
        if (!layer.firing_counts) throw py::value_error("last_firing needs firing_counts");
        layer.last_firing = mutable_data(record, "last_firing");
      }
      layers.push_back(layer);
    }
    n_features_ = layers.front().fan_in;
    n_outputs_ = layers.back().fan_out;
    step_ = std::make_unique<TrainStep>(std::move(layers), loss_);
  }

  void flush_last_firing() {
    py::gil_scoped_release release;  // safe: no Python object is touched below
    step_->flush_last_firing();
  }

  py::tuple run(const FloatArray& x, std::optional<Int64Array> rows,
                std::optional<Int64Array> labels, std::optional<FloatArray> targets,
                int optimizer, float lr, float momentum, float weight_decay, bool nesterov,
                float beta1, float beta2, float eps, float clip_norm,
                std::optional<Int64Array> cohort_start, std::int64_t adam_step,
                std::int64_t step_number, bool monitor, bool track_gradients, bool track_deaths, bool check_values) {
    require_ndim(x, "x", 2);
    if (x.shape(1) != n_features_)
      throw py::value_error("x has " + std::to_string(x.shape(1)) +
                            " features but the first layer expects " + std::to_string(n_features_));
    const py::ssize_t n_rows = x.shape(0);
    Batch batch{x.data(), n_rows, nullptr, nullptr, nullptr, check_values};
    if (rows) {
      require_ndim(*rows, "rows", 1);
      batch.rows = rows->data();
      batch.n = rows->shape(0);
      for (py::ssize_t i = 0; i < batch.n; ++i)
        if (batch.rows[i] < 0 || batch.rows[i] >= n_rows)
          throw py::value_error("row index " + std::to_string(batch.rows[i]) + " is outside [0, " +
                                std::to_string(n_rows) + ")");
    }
    if (batch.n == 0) throw py::value_error("the batch is empty");
    if (loss_ == LossKind::cross_entropy) {
      if (!labels) throw py::value_error("cross-entropy needs integer labels");
      require_shape(*labels, "labels", {n_rows});
      batch.labels = labels->data();
      for (py::ssize_t i = 0; i < batch.n; ++i) {
        const std::int64_t y = batch.labels[batch.rows ? batch.rows[i] : i];
        if (y < 0 || y >= n_outputs_)
          throw py::value_error("y has label " + std::to_string(y) + ", outside [0, " +
                                std::to_string(n_outputs_) + ") for a model with " +
                                std::to_string(n_outputs_) + " outputs");
      }
    } else {
      if (!targets) throw py::value_error("mse needs float targets");
      require_shape(*targets, "targets", {n_rows, n_outputs_});
      batch.targets = targets->data();
    }
    if (optimizer != 0 && optimizer != 1)
      throw py::value_error("unknown optimizer code " + std::to_string(optimizer));
    if (optimizer == 1 && adam_step < 1) throw py::value_error("adam_step must be >= 1");
    if (!(clip_norm >= 0.0f)) throw py::value_error("clip_norm must be >= 0");
    OptimizerSettings opt{static_cast<OptimizerKind>(optimizer), lr, momentum, weight_decay,
                          nesterov, beta1, beta2, eps, adam_step, step_number, clip_norm,
                          nullptr, 0};
    if (cohort_start) {
      require_ndim(*cohort_start, "cohort_start", 1);
      opt.n_cohorts = cohort_start->shape(0);
      opt.cohort_start = cohort_start->data();
      for (std::int64_t c = 0; c < opt.n_cohorts; ++c)
        if (opt.cohort_start[c] < 0 || opt.cohort_start[c] >= adam_step)
          throw py::value_error("cohort_start must lie in [0, adam_step)");
      if (n_cohort_ids_ > opt.n_cohorts)
        throw py::value_error("an element names a cohort beyond cohort_start");
    }
    StepResult result;
    {
      py::gil_scoped_release release;  // safe: no Python object is touched below
      result = step_->run(batch, opt, monitor, track_gradients, track_deaths, num_threads());
    }
    return py::make_tuple(result.loss, result.correct, static_cast<int>(result.status),
                          result.grad_norm);
  }

 private:
  template <class Array>
  Array keep(const py::handle& object, const char* name) {
    if (!py::isinstance<Array>(object))
      throw py::type_error(std::string(name) + " must be a C-contiguous numpy array of the exact dtype");
    Array array = py::reinterpret_borrow<Array>(object);
    if (!(array.flags() & py::array::c_style))
      throw py::type_error(std::string(name) + " must be C-contiguous");
    kept_.push_back(array);
    return array;
  }

  float* state(const py::handle& object, py::ssize_t size) {
    if (object.is_none()) return nullptr;
    auto array = keep<FloatArray>(object, "optimizer state");
    if (array.size() != size) throw py::value_error("optimizer state has the wrong size");
    return mutable_data(array, "optimizer state");
  }

  // Cohort ids of Adam's elements (see AdamArgs), checked once here: each id
  // must name an entry of the cohort_start array passed to run.
  const std::int32_t* cohort(const py::handle& object, py::ssize_t size) {
    if (object.is_none()) return nullptr;
    auto array = keep<py::array_t<std::int32_t, py::array::c_style>>(object, "cohort");
    if (array.size() != size) throw py::value_error("cohort ids have the wrong size");
    const std::int32_t* ids = array.data();
    for (py::ssize_t i = 0; i < size; ++i) {
      if (ids[i] < 0) throw py::value_error("cohort ids must be >= 0");
      n_cohort_ids_ = std::max<std::int64_t>(n_cohort_ids_, ids[i] + std::int64_t{1});
    }
    return ids;
  }

  std::int64_t n_cohort_ids_ = 0;
  std::vector<py::object> kept_;
  std::unique_ptr<TrainStep> step_;
  LossKind loss_ = LossKind::cross_entropy;
  std::int64_t n_features_ = 0, n_outputs_ = 0;
};

}  // namespace

void bind_train(py::module_& m) {
  m.attr("LAST_FIRING_FIELDS") = static_cast<int>(kLastFiringFields);
  py::class_<TrainStepHandle>(m, "TrainStep",
                              "A whole training step (forward, loss, backward, update) in one "
                              "call, over workspaces allocated once.")
      .def(py::init<const py::list&, const py::list&, const py::list&, const py::list&, int,
                    const py::list&, const py::list&, const py::list&, const py::list&,
                    const py::list&, const py::list&, const py::list&, const py::list&,
                    const py::list&>(),
           py::arg("weights"), py::arg("biases"), py::arg("activations"),
           py::arg("negative_slopes"), py::arg("loss"), py::arg("weight_states1"),
           py::arg("weight_states2"), py::arg("bias_states1"), py::arg("bias_states2"),
           py::arg("weight_cohorts"), py::arg("bias_cohorts"),
           py::arg("firing_counts"), py::arg("gradient_magnitudes"), py::arg("last_firing"))
      .def("run", &TrainStepHandle::run, py::arg("x").noconvert(),
           py::arg("rows").noconvert().none(true), py::arg("labels").noconvert().none(true),
           py::arg("targets").noconvert().none(true), py::arg("optimizer"), py::arg("lr"),
           py::arg("momentum"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("beta1"),
           py::arg("beta2"), py::arg("eps"), py::arg("clip_norm"),
           py::arg("cohort_start").noconvert().none(true), py::arg("adam_step"),
           py::arg("step_number"),
           py::arg("monitor"), py::arg("track_gradients"), py::arg("track_deaths"),
           py::arg("check_values"),
           "Returns (loss, correct, status, grad_norm); grad_norm is the gradients' global norm "
           "before clipping (NaN when clip_norm is 0); status 0 = applied, 1 = loss not finite, 2 = "
           "update not finite, 3 = x not finite, 4 = targets not finite (nothing written "
           "unless 0).")
      .def("flush_last_firing", &TrainStepHandle::flush_last_firing,
           "Write last_firing rows for the units that fired in the latest step.");
}

}  // namespace rs
