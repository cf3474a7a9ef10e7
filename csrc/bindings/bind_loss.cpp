#include "bindings/pybind.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/threads.hpp"

namespace rs {
namespace {

double softmax_cross_entropy_binding(const FloatArray& logits, const Int64Array& labels,
                                     FloatArray& grad) {
  require_ndim(logits, "logits", 2);
  const py::ssize_t n = logits.shape(0), c = logits.shape(1);
  if (n == 0 || c == 0)
    throw py::value_error("logits must be non-empty, got shape " + shape_string(logits));
  require_shape(labels, "labels", {n});
  require_shape(grad, "grad", {n, c});
  // A label out of range would index past the row: refuse it here too, even
  // though the Python layer has already checked.
  const std::int64_t* y = labels.data();
  for (py::ssize_t i = 0; i < n; ++i)
    if (y[i] < 0 || y[i] >= c)
      throw py::value_error("label " + std::to_string(y[i]) + " at row " + std::to_string(i) +
                            " is outside [0, " + std::to_string(c) + ")");
  // Not even in place: the row's logit of the label is read after grad is written.
  require_apart({{&grad, "grad"}}, {{&logits, "logits"}, {&labels, "labels"}});
  const float* z = logits.data();
  float* g = mutable_data(grad, "grad");
  py::gil_scoped_release release;  // safe: no Python object is touched below
  return kernels().softmax_cross_entropy(z, y, n, c, g, num_threads());
}

double mean_squared_error_binding(const FloatArray& out, const FloatArray& target,
                                  FloatArray& grad) {
  require_ndim(out, "out", 2);
  const py::ssize_t n = out.shape(0), c = out.shape(1);
  if (n == 0 || c == 0)
    throw py::value_error("out must be non-empty, got shape " + shape_string(out));
  require_shape(target, "target", {n, c});
  require_shape(grad, "grad", {n, c});
  require_apart({{&grad, "grad"}}, {{&out, "out"}, {&target, "target"}});
  const float* o = out.data();
  const float* t = target.data();
  float* g = mutable_data(grad, "grad");
  py::gil_scoped_release release;  // safe: no Python object is touched below
  return kernels().mean_squared_error(o, t, n, c, g, num_threads());
}

}  // namespace

void bind_loss(py::module_& m) {
  m.def("softmax_cross_entropy", &softmax_cross_entropy_binding, py::arg("logits").noconvert(),
        py::arg("labels").noconvert(), py::arg("grad").noconvert(),
        "Mean softmax cross-entropy; writes d loss / d logits into grad (sharing no memory with "
        "logits or labels: ValueError) and returns the loss.");
  m.def("mean_squared_error", &mean_squared_error_binding, py::arg("out").noconvert(),
        py::arg("target").noconvert(), py::arg("grad").noconvert(),
        "Mean over all elements of (out - target)**2; writes its gradient into grad, which "
        "shares no memory with out or target (ValueError).");
}

}  // namespace rs
