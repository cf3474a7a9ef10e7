#include "bindings/pybind.hpp"
#include "kernels/layer_verdict.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/threads.hpp"

namespace rs {
namespace {

py::tuple random_networks_binding(const FloatArray& x, const FloatArray& first_weight,
                                  const FloatArray& weights, const FloatArray& biases,
                                  std::int64_t reference_point) {
  require_ndim(x, "x", 2);
  require_ndim(first_weight, "first_weight", 3);
  require_ndim(weights, "weights", 4);
  require_ndim(biases, "biases", 3);
  const py::ssize_t n_points = x.shape(0), n_inputs = x.shape(1);
  const py::ssize_t n_networks = first_weight.shape(0), width = first_weight.shape(2);
  const py::ssize_t depth = biases.shape(1);
  if (n_points == 0 || n_inputs == 0) throw py::value_error("x is empty");
  if (width == 0 || depth == 0) throw py::value_error("width and depth must be >= 1");
  require_shape(first_weight, "first_weight", {n_networks, n_inputs, width});
  require_shape(weights, "weights", {n_networks, depth - 1, width, width});
  require_shape(biases, "biases", {n_networks, depth, width});
  if (reference_point < 0 || reference_point >= n_points)
    throw py::value_error("reference_point is outside [0, n_points)");
  Int32Array dead_at(n_networks), constant_at(n_networks), dead_at_point(n_networks);
  const RandomNetworksArgs args{n_networks,
                                n_points,
                                n_inputs,
                                width,
                                depth,
                                x.data(),
                                first_weight.data(),
                                weights.data(),
                                biases.data(),
                                reference_point,
                                dead_at.mutable_data(),
                                constant_at.mutable_data(),
                                dead_at_point.mutable_data()};
  {
    py::gil_scoped_release release;  // safe: no Python object is touched below
    experiment_kernels().random_networks(args, num_threads());
  }
  return py::make_tuple(dead_at, constant_at, dead_at_point);
}

}  // namespace

void bind_experiments(py::module_& m) {
  py::enum_<LayerVerdict>(m, "LayerVerdict",
                          "What a hidden layer is on a dataset: fires, dead_by_sign, or "
                          "underflowed (no unit fires and every pre-activation is exactly 0).")
      .value("fires", LayerVerdict::fires)
      .value("dead_by_sign", LayerVerdict::dead_by_sign)
      .value("underflowed", LayerVerdict::underflowed);
  m.def("layer_verdict", &layer_verdict, py::arg("fires_anywhere").noconvert(),
        py::arg("negative_anywhere").noconvert(),
        "The verdict on a layer from whether some unit fires on some sample and whether some "
        "pre-activation is negative.");
  m.def("random_networks", &random_networks_binding, py::arg("x").noconvert(),
        py::arg("first_weight").noconvert(), py::arg("weights").noconvert(),
        py::arg("biases").noconvert(), py::arg("reference_point"),
        "Run many random ReLU networks on the points x. Returns int32 arrays (dead_at, "
        "constant_at, dead_at_point): per network, the first hidden layer (from 1; depth + 1 "
        "if none) where no unit fires on any point, where the output is the same at every "
        "point, and where no unit fires at x[reference_point].");
}

}  // namespace rs
