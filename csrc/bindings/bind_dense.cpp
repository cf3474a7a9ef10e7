#include "bindings/pybind.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/threads.hpp"

namespace rs {
namespace {

void gemm_binding(const FloatArray& a, const FloatArray& b, FloatArray& c, bool transpose_a,
                  bool transpose_b) {
  require_ndim(a, "a", 2);
  require_ndim(b, "b", 2);
  const py::ssize_t m = transpose_a ? a.shape(1) : a.shape(0);
  const py::ssize_t k = transpose_a ? a.shape(0) : a.shape(1);
  const py::ssize_t kb = transpose_b ? b.shape(1) : b.shape(0);
  const py::ssize_t n = transpose_b ? b.shape(0) : b.shape(1);
  if (k != kb)
    throw py::value_error("inner dimensions differ: op(a) has " + std::to_string(k) +
                          " columns, op(b) has " + std::to_string(kb) + " rows");
  require_shape(c, "c", {m, n});
  require_apart({{&c, "c"}}, {{&a, "a"}, {&b, "b"}});
  GemmArgs g{m,
             n,
             k,
             a.data(),
             transpose_a ? 1 : a.shape(1),
             transpose_a ? a.shape(1) : 1,
             b.data(),
             transpose_b ? 1 : b.shape(1),
             transpose_b ? b.shape(1) : 1,
             mutable_data(c, "c"),
             n};
  py::gil_scoped_release release;  // safe: no Python object is touched below
  kernels().gemm(g, num_threads());
}

void dense_forward_binding(const FloatArray& x, const FloatArray& weight, const FloatArray& bias,
                           FloatArray& pre, FloatArray& out, Activation activation,
                           float negative_slope, std::optional<Int64Array> firing_counts,
                           std::optional<FloatArray> max_pre,
                           std::optional<Int64Array> nonfinite_counts) {
  require_ndim(x, "x", 2);
  require_ndim(weight, "weight", 2);
  const py::ssize_t n = x.shape(0), fan_in = weight.shape(0), fan_out = weight.shape(1);
  if (x.shape(1) != fan_in)
    throw py::value_error("x has " + std::to_string(x.shape(1)) +
                          " features but the weight expects " + std::to_string(fan_in));
  require_shape(bias, "bias", {fan_out});
  require_shape(pre, "pre", {n, fan_out});
  require_shape(out, "out", {n, fan_out});
  const NamedArray counts{firing_counts ? &*firing_counts : nullptr, "firing_counts"};
  const NamedArray maxima{max_pre ? &*max_pre : nullptr, "max_pre"};
  const NamedArray nonfinite{nonfinite_counts ? &*nonfinite_counts : nullptr, "nonfinite_counts"};
  // out may be pre itself (a linear layer's output is its pre-activation).
  require_apart({{&pre, "pre"}, {&out, "out"}, counts, maxima, nonfinite},
                {{&x, "x"},
                 {&weight, "weight"},
                 {&bias, "bias"},
                 {&pre, "pre"},
                 {&out, "out"},
                 counts,
                 maxima,
                 nonfinite},
                {{"pre", "out"}, {"out", "pre"}});
  DenseForwardArgs d{n,
                     fan_in,
                     fan_out,
                     x.data(),
                     weight.data(),
                     bias.data(),
                     mutable_data(pre, "pre"),
                     mutable_data(out, "out"),
                     activation,
                     negative_slope,
                     nullptr,
                     nullptr};
  if (firing_counts) {
    require_shape(*firing_counts, "firing_counts", {fan_out});
    d.firing_counts = mutable_data(*firing_counts, "firing_counts");
  }
  if (max_pre) {
    require_shape(*max_pre, "max_pre", {fan_out});
    d.max_pre = mutable_data(*max_pre, "max_pre");
  }
  if (nonfinite_counts) {
    require_shape(*nonfinite_counts, "nonfinite_counts", {fan_out});
    d.nonfinite_counts = mutable_data(*nonfinite_counts, "nonfinite_counts");
  }
  py::gil_scoped_release release;  // safe: no Python object is touched below
  kernels().dense_forward(d, num_threads());
}

void dense_backward_binding(const FloatArray& x, const FloatArray& weight, const FloatArray& pre,
                            const FloatArray& grad_out, FloatArray& grad_pre,
                            FloatArray& grad_weight, FloatArray& grad_bias,
                            std::optional<FloatArray> grad_x, Activation activation,
                            float negative_slope) {
  require_ndim(x, "x", 2);
  require_ndim(weight, "weight", 2);
  const py::ssize_t n = x.shape(0), fan_in = weight.shape(0), fan_out = weight.shape(1);
  require_shape(x, "x", {n, fan_in});
  require_shape(pre, "pre", {n, fan_out});
  require_shape(grad_out, "grad_out", {n, fan_out});
  require_shape(grad_pre, "grad_pre", {n, fan_out});
  require_shape(grad_weight, "grad_weight", {fan_in, fan_out});
  require_shape(grad_bias, "grad_bias", {fan_out});
  if (grad_x) require_shape(*grad_x, "grad_x", {n, fan_in});
  // In place, as the kernel supports it: grad_pre may be grad_out itself, and
  // grad_x may be grad_out or x (both read before grad_x is written).
  const NamedArray grad_input{grad_x ? &*grad_x : nullptr, "grad_x"};
  require_apart({{&grad_pre, "grad_pre"},
                 {&grad_weight, "grad_weight"},
                 {&grad_bias, "grad_bias"},
                 grad_input},
                {{&x, "x"},
                 {&weight, "weight"},
                 {&pre, "pre"},
                 {&grad_out, "grad_out"},
                 {&grad_pre, "grad_pre"},
                 {&grad_weight, "grad_weight"},
                 {&grad_bias, "grad_bias"},
                 grad_input},
                {{"grad_pre", "grad_out"}, {"grad_x", "grad_out"}, {"grad_x", "x"}});
  DenseBackwardArgs d{n,
                      fan_in,
                      fan_out,
                      x.data(),
                      weight.data(),
                      pre.data(),
                      grad_out.data(),
                      mutable_data(grad_pre, "grad_pre"),
                      mutable_data(grad_weight, "grad_weight"),
                      mutable_data(grad_bias, "grad_bias"),
                      nullptr,
                      activation,
                      negative_slope};
  if (grad_x) d.grad_x = mutable_data(*grad_x, "grad_x");
  py::gil_scoped_release release;  // safe: no Python object is touched below
  kernels().dense_backward(d, num_threads());
}

}  // namespace

void bind_dense(py::module_& m) {
  py::enum_<Activation>(m, "Activation", "A layer's activation, as the kernels know it.")
      .value("identity", Activation::identity)
      .value("relu", Activation::relu)
      .value("leaky_relu", Activation::leaky_relu);
  m.def("gemm", &gemm_binding, py::arg("a").noconvert(), py::arg("b").noconvert(),
        py::arg("c").noconvert(), py::arg("transpose_a") = false, py::arg("transpose_b") = false,
        "c = op(a) @ op(b), written into c, which shares no memory with a or b (ValueError).");
  m.def("dense_forward", &dense_forward_binding, py::arg("x").noconvert(),
        py::arg("weight").noconvert(), py::arg("bias").noconvert(), py::arg("pre").noconvert(),
        py::arg("out").noconvert(), py::arg("activation"), py::arg("negative_slope"),
        py::arg("firing_counts").noconvert().none(true) = py::none(),
        py::arg("max_pre").noconvert().none(true) = py::none(),
        py::arg("nonfinite_counts").noconvert().none(true) = py::none(),
        "pre = x @ weight + bias; out = act(pre); optionally firing_counts += (pre > 0).sum(0), "
        "max_pre = maximum(max_pre, pre.max(0)) and nonfinite_counts += (~isfinite(pre)).sum(0), "
        "all in one pass. Arrays written share no memory with other arguments (ValueError), "
        "except that out may be pre.");
  m.def("dense_backward", &dense_backward_binding, py::arg("x").noconvert(),
        py::arg("weight").noconvert(), py::arg("pre").noconvert(), py::arg("grad_out").noconvert(),
        py::arg("grad_pre").noconvert(), py::arg("grad_weight").noconvert(),
        py::arg("grad_bias").noconvert(), py::arg("grad_x").noconvert().none(true),
        py::arg("activation"), py::arg("negative_slope"),
        "grad_pre = grad_out * act'(pre); grad_weight = x.T @ grad_pre; grad_bias = "
        "grad_pre.sum(0); grad_x = grad_pre @ weight.T when grad_x is given. Arrays written "
        "share no memory with other arguments (ValueError), except in place: grad_pre may be "
        "grad_out, and grad_x may be grad_out or x.");
}

}  // namespace rs
