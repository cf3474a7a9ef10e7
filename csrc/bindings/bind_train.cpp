#include "bindings/pybind.hpp"
#include "bindings/train_specs.hpp"

namespace rs {
namespace {

void bind_step_vocabulary(py::module_& m) {
  py::enum_<LossKind>(m, "Loss", "The loss a TrainStep minimizes.")
      .value("cross_entropy", LossKind::cross_entropy)
      .value("mse", LossKind::mse);
  py::enum_<StepStatus>(m, "StepStatus", "What became of a step (nothing is written unless ok).")
      .value("ok", StepStatus::ok)
      .value("loss_not_finite", StepStatus::loss_not_finite)
      .value("update_not_finite", StepStatus::update_not_finite)
      .value("x_not_finite", StepStatus::x_not_finite)
      .value("targets_not_finite", StepStatus::targets_not_finite);

  py::tuple fields(static_cast<py::size_t>(last_firing::kFields));
  int column = 0;
#define RS_LAST_FIRING_NAME(name) fields[static_cast<py::size_t>(column++)] = #name;
  RS_LAST_FIRING_FIELDS(RS_LAST_FIRING_NAME)
#undef RS_LAST_FIRING_NAME
  m.attr("LAST_FIRING_FIELDS") = fields;
}

}  // namespace

void bind_train(py::module_& m) {
  bind_step_vocabulary(m);

  py::class_<UnitBuffersSpec>(m, "UnitBuffers",
                              "A hidden layer's per-unit statistics that the step accumulates "
                              "(None: not tracked).")
      .def(py::init([](const py::object& firing_counts, const py::object& gradient_magnitude,
                       const py::object& last_firing) {
             return UnitBuffersSpec{
                 optional_array<std::int64_t>(firing_counts, "firing_counts"),
                 optional_array<double>(gradient_magnitude, "gradient_magnitude"),
                 optional_array<double>(last_firing, "last_firing")};
           }),
           py::kw_only(), py::arg("firing_counts") = py::none(),
           py::arg("gradient_magnitude") = py::none(), py::arg("last_firing") = py::none())
      .def_readonly("firing_counts", &UnitBuffersSpec::firing_counts)
      .def_readonly("gradient_magnitude", &UnitBuffersSpec::gradient_magnitude)
      .def_readonly("last_firing", &UnitBuffersSpec::last_firing);

  py::class_<LayerSpec>(m, "LayerSpec",
                        "One dense layer of a TrainStep and the buffers it updates.")
      .def(py::init([](const py::object& weight, const py::object& bias, Activation activation,
                       float negative_slope, ParamStateSpec weight_state, ParamStateSpec bias_state,
                       UnitBuffersSpec units) {
             return LayerSpec{exact_array<float>(weight, "weight"),
                              exact_array<float>(bias, "bias"),
                              activation,
                              negative_slope,
                              weight_state,
                              bias_state,
                              units};
           }),
           py::arg("weight"), py::arg("bias"), py::arg("activation"),
           py::arg("negative_slope") = 0.0f, py::kw_only(),
           py::arg("weight_state") = ParamStateSpec{}, py::arg("bias_state") = ParamStateSpec{},
           py::arg("units") = UnitBuffersSpec{})
      .def_readonly("weight", &LayerSpec::weight)
      .def_readonly("bias", &LayerSpec::bias)
      .def_readonly("activation", &LayerSpec::activation)
      .def_readonly("negative_slope", &LayerSpec::negative_slope);

  py::class_<StepSettingsSpec>(m, "StepSettings", "What one step does besides the batch.")
      .def(py::init([](OptimizerSettingsSpec optimizer, std::int64_t step_number) {
             return StepSettingsSpec{std::move(optimizer), step_number};
           }),
           py::arg("optimizer"), py::arg("step_number"))
      .def_readonly("optimizer", &StepSettingsSpec::optimizer)
      .def_readwrite("step_number", &StepSettingsSpec::step_number);

  py::class_<BatchSpec>(m, "Batch",
                        "x (or its rows `rows`) with integer labels (cross-entropy) or float "
                        "targets (mse).")
      .def(
          py::init([](const py::object& x, const py::object& rows, const py::object& labels,
                      const py::object& targets, bool check_values) {
            return BatchSpec{exact_array<float>(x, "x"), optional_array<std::int64_t>(rows, "rows"),
                             optional_array<std::int64_t>(labels, "labels"),
                             optional_array<float>(targets, "targets"), check_values};
          }),
          py::arg("x"), py::kw_only(), py::arg("rows") = py::none(), py::arg("labels") = py::none(),
          py::arg("targets") = py::none(), py::arg("check_values") = false)
      // Two-argument factories for the hot path: pybind11 parses keyword
      // arguments on a slower path (about 1 us per call measured).
      .def_static(
          "labelled",
          [](const py::object& x, const py::object& labels) {
            return BatchSpec{exact_array<float>(x, "x"), std::nullopt,
                             exact_array<std::int64_t>(labels, "labels"), std::nullopt, false};
          },
          py::arg("x"), py::arg("labels"),
          "A cross-entropy batch: all rows of x with their integer labels.")
      .def_static(
          "with_targets",
          [](const py::object& x, const py::object& targets) {
            return BatchSpec{exact_array<float>(x, "x"), std::nullopt, std::nullopt,
                             exact_array<float>(targets, "targets"), false};
          },
          py::arg("x"), py::arg("targets"), "An mse batch: all rows of x with their float targets.")
      // Strict, as the constructors are: a float array would otherwise be
      // converted (float rows truncated) without a word.
      .def_property(
          "rows", [](const BatchSpec& b) { return b.rows; },
          [](BatchSpec& b, const py::object& rows) {
            b.rows = optional_array<std::int64_t>(rows, "rows");
          },
          "the rows of x (and of the labels) to train on, or None for all")
      .def_readwrite("check_values", &BatchSpec::check_values,
                     "refuse NaN or Inf in x and the targets first");

  py::class_<StepResult>(m, "StepResult")
      // A plain bool for the common case: reading `status` builds an enum object
      // and comparing it costs more than the rest of a tiny step's wrapper.
      .def_property_readonly(
          "applied", [](const StepResult& r) { return r.status == StepStatus::ok; },
          "whether the update was applied (status ok)")
      .def_readonly("loss", &StepResult::loss)
      .def_readonly("correct", &StepResult::correct, "argmax hits, before the update")
      .def_readonly("status", &StepResult::status)
      .def_readonly("grad_norm", &StepResult::grad_norm,
                    "the gradients' global norm before clipping (NaN when not clipping)");

  py::class_<TrainStepHandle>(m, "TrainStep",
                              "A whole training step (forward, loss, backward, update) in one "
                              "call, over workspaces allocated once.")
      .def(py::init<std::vector<LayerSpec>, LossKind>(), py::arg("layers"), py::arg("loss"))
      .def("run", &TrainStepHandle::run, py::arg("batch"), py::arg("settings"),
           "One step; nothing is written unless the result's status is ok.")
      .def("run_whole_batch", &TrainStepHandle::run_whole_batch, py::arg("x"), py::arg("targets"),
           py::arg("optimizer"), py::arg("step_number"),
           "As run, on all rows of x with NaN and Inf refused: integer labels for cross-entropy, "
           "float targets for mse.")
      .def("flush_last_firing", &TrainStepHandle::flush_last_firing,
           "Write last_firing rows for the units that fired in the latest step.")
      .def("release", &TrainStepHandle::release_workspaces,
           "Free the batch-sized workspaces; the next run allocates them again.");
}

}  // namespace rs
