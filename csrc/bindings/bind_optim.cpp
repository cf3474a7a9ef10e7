#include "bindings/pybind.hpp"
#include "bindings/train_specs.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/threads.hpp"

namespace rs {
namespace {

bool sgd_update_binding(FloatArray& param, const FloatArray& grad,
                        std::optional<FloatArray> velocity, float lr, float momentum,
                        float weight_decay, bool nesterov, bool commit) {
  const py::ssize_t size = param.size();
  if (grad.size() != size)
    throw py::value_error("grad has " + std::to_string(grad.size()) + " elements, param has " +
                          std::to_string(size));
  const NamedArray moving{velocity ? &*velocity : nullptr, "velocity"};
  require_apart({{&param, "param"}, moving}, {{&param, "param"}, {&grad, "grad"}, moving});
  SgdArgs s{mutable_data(param, "param"),
            grad.data(),
            nullptr,
            size,
            lr,
            momentum,
            weight_decay,
            nesterov};
  if (velocity) {
    if (velocity->size() != size) throw py::value_error("velocity and param differ in size");
    s.velocity = mutable_data(*velocity, "velocity");
  }
  py::gil_scoped_release release;  // safe: no Python object is touched below
  return kernels().sgd_update(s, commit, num_threads());
}

bool adam_update_binding(FloatArray& param, const FloatArray& grad, FloatArray& first_moment,
                         FloatArray& second_moment, float lr, float beta1, float beta2, float eps,
                         float weight_decay, std::int64_t step, bool commit,
                         std::optional<Int32Array> cohort, std::optional<Int64Array> cohort_start) {
  const py::ssize_t size = param.size();
  if (grad.size() != size || first_moment.size() != size || second_moment.size() != size)
    throw py::value_error("param, grad and both moments must have the same size");
  if (step < 1) throw py::value_error("step must be >= 1, got " + std::to_string(step));
  const NamedArray cohorts{cohort ? &*cohort : nullptr, "cohort"};
  const NamedArray starts{cohort_start ? &*cohort_start : nullptr, "cohort_start"};
  require_apart(
      {{&param, "param"}, {&first_moment, "first_moment"}, {&second_moment, "second_moment"}},
      {{&param, "param"},
       {&grad, "grad"},
       {&first_moment, "first_moment"},
       {&second_moment, "second_moment"},
       cohorts,
       starts});
  AdamArgs a{mutable_data(param, "param"),
             grad.data(),
             mutable_data(first_moment, "first_moment"),
             mutable_data(second_moment, "second_moment"),
             size,
             lr,
             beta1,
             beta2,
             eps,
             weight_decay,
             step};
  if (cohort.has_value() != cohort_start.has_value())
    throw py::value_error("cohort and cohort_start go together");
  if (cohort) {
    if (cohort->size() != size) throw py::value_error("cohort and param differ in size");
    a.n_cohorts = cohort_start->size();
    a.cohort_start = cohort_start->data();
    for (std::int64_t c = 0; c < a.n_cohorts; ++c)
      if (a.cohort_start[c] < 0 || a.cohort_start[c] >= step)
        throw py::value_error("cohort_start must lie in [0, step)");
    a.cohort = cohort->data();
    for (py::ssize_t i = 0; i < size; ++i)
      if (a.cohort[i] < 0 || a.cohort[i] >= a.n_cohorts)
        throw py::value_error("a cohort id is outside [0, len(cohort_start))");
  }
  py::gil_scoped_release release;  // safe: no Python object is touched below
  return kernels().adam_update(a, commit, num_threads());
}

}  // namespace

void bind_optim(py::module_& m) {
  py::enum_<OptimizerKind> kinds(m, "OptimizerKind", "The optimizers of the training step.");
#define RS_OPTIMIZER_ENUM_BINDING(name) kinds.value(#name, OptimizerKind::name);
  RS_OPTIMIZER_KINDS(RS_OPTIMIZER_ENUM_BINDING)
#undef RS_OPTIMIZER_ENUM_BINDING

  py::class_<ParamStateSpec>(m, "ParamState",
                             "An optimizer's buffers for one parameter, each shaped like it.")
      .def(py::init([](const py::object& velocity, const py::object& first_moment,
                       const py::object& second_moment, const py::object& cohort) {
             return ParamStateSpec{optional_array<float>(velocity, "velocity"),
                                   optional_array<float>(first_moment, "first_moment"),
                                   optional_array<float>(second_moment, "second_moment"),
                                   optional_array<std::int32_t>(cohort, "cohort")};
           }),
           py::kw_only(), py::arg("velocity") = py::none(), py::arg("first_moment") = py::none(),
           py::arg("second_moment") = py::none(), py::arg("cohort") = py::none())
      .def_readonly("velocity", &ParamStateSpec::velocity)
      .def_readonly("first_moment", &ParamStateSpec::first_moment)
      .def_readonly("second_moment", &ParamStateSpec::second_moment)
      .def_readonly("cohort", &ParamStateSpec::cohort);

  py::class_<OptimizerSettingsSpec>(m, "OptimizerSettings",
                                    "Hyper-parameters of one update (fields an optimizer does "
                                    "not use are ignored).")
      .def(py::init([](OptimizerKind kind, float lr, float weight_decay, float momentum,
                       bool nesterov, float beta1, float beta2, float eps, float clip_norm,
                       std::int64_t update_number, const py::object& cohort_start) {
             OptimizerSettingsSpec s;
             s.kind = kind;
             s.lr = lr;
             s.weight_decay = weight_decay;
             s.momentum = momentum;
             s.nesterov = nesterov;
             s.beta1 = beta1;
             s.beta2 = beta2;
             s.eps = eps;
             s.clip_norm = clip_norm;
             s.update_number = update_number;
             s.cohort_start_array = optional_array<std::int64_t>(cohort_start, "cohort_start");
             return s;
           }),
           py::arg("kind"), py::arg("lr"), py::kw_only(), py::arg("weight_decay") = 0.0f,
           py::arg("momentum") = 0.0f, py::arg("nesterov") = false, py::arg("beta1") = 0.9f,
           py::arg("beta2") = 0.999f, py::arg("eps") = 1e-8f, py::arg("clip_norm") = 0.0f,
           py::arg("update_number") = 1, py::arg("cohort_start") = py::none())
      .def_readonly("kind", &OptimizerSettingsSpec::kind)
      .def_readwrite("lr", &OptimizerSettingsSpec::lr, "of this update, warmup included")
      .def_readonly("weight_decay", &OptimizerSettingsSpec::weight_decay)
      .def_readonly("momentum", &OptimizerSettingsSpec::momentum)
      .def_readonly("nesterov", &OptimizerSettingsSpec::nesterov)
      .def_readonly("beta1", &OptimizerSettingsSpec::beta1)
      .def_readonly("beta2", &OptimizerSettingsSpec::beta2)
      .def_readonly("eps", &OptimizerSettingsSpec::eps)
      .def_readonly("clip_norm", &OptimizerSettingsSpec::clip_norm)
      .def_readwrite("update_number", &OptimizerSettingsSpec::update_number)
      .def_readonly("cohort_start", &OptimizerSettingsSpec::cohort_start_array);

  m.def("sgd_update", &sgd_update_binding, py::arg("param").noconvert(),
        py::arg("grad").noconvert(), py::arg("velocity").noconvert().none(true), py::arg("lr"),
        py::arg("momentum"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("commit"),
        "SGD step in place (commit=True) or a dry run (commit=False); returns whether every "
        "new value is finite. param and velocity share no memory with the other arguments "
        "(ValueError).");
  m.def("adam_update", &adam_update_binding, py::arg("param").noconvert(),
        py::arg("grad").noconvert(), py::arg("first_moment").noconvert(),
        py::arg("second_moment").noconvert(), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
        py::arg("eps"), py::arg("weight_decay"), py::arg("step"), py::arg("commit"),
        py::arg("cohort").noconvert() = py::none(),
        py::arg("cohort_start").noconvert() = py::none(),
        "Adam step in place (commit=True) or a dry run (commit=False); returns whether every "
        "new value is finite. cohort (int32 per element) and cohort_start (int64 per cohort) "
        "give elements whose moments restarted after update cohort_start[cohort[i]] their own "
        "bias correction. param and both moments share no memory with the other arguments "
        "(ValueError).");
}

}  // namespace rs
