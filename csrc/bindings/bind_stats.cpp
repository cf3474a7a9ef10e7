#include "bindings/pybind.hpp"
#include "stats/row_stats.hpp"

namespace rs {

void bind_stats(py::module_& m) {
  m.def(
      "row_sum_squares",
      [](const FloatArray& a, DoubleArray& out) {
        require_ndim(a, "a", 2);
        require_shape(out, "out", {a.shape(0)});
        double* target = mutable_data(out, "out");
        py::gil_scoped_release release;  // safe: no Python object is touched below
        row_sum_squares(a.data(), a.shape(0), a.shape(1), target);
      },
      py::arg("a").noconvert(), py::arg("out").noconvert(),
      "out[r] = sum of squares of row r of a (float32, C-contiguous), in float64.");
  m.def(
      "count_positive_columns",
      [](const FloatArray& a, Int64Array& counts) {
        require_ndim(a, "a", 2);
        require_shape(counts, "counts", {a.shape(1)});
        std::int64_t* target = mutable_data(counts, "counts");
        py::gil_scoped_release release;  // safe: no Python object is touched below
        count_positive_columns(a.data(), a.shape(0), a.shape(1), target);
      },
      py::arg("a").noconvert(), py::arg("counts").noconvert(),
      "counts[c] += rows of a (float32, C-contiguous) whose column c is > 0.");
}

}  // namespace rs
