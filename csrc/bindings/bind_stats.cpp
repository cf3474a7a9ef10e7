#include "bindings/pybind.hpp"
#include "stats/column_counts.hpp"

namespace rs {

void bind_stats(py::module_& m) {
  m.def(
      "count_positive_columns",
      [](const FloatArray& a, Int64Array& counts) {
        require_ndim(a, "a", 2);
        require_shape(counts, "counts", {a.shape(1)});
        require_apart({{&counts, "counts"}}, {{&a, "a"}});
        std::int64_t* target = mutable_data(counts, "counts");
        py::gil_scoped_release release;  // safe: no Python object is touched below
        count_positive_columns(a.data(), a.shape(0), a.shape(1), target);
      },
      py::arg("a").noconvert(), py::arg("counts").noconvert(),
      "counts[c] += rows of a (float32, C-contiguous) whose column c is > 0.");
}

}  // namespace rs
