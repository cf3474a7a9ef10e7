// The one include of pybind11 for the bindings, plus the checks every binding
// shares. Bindings accept only arrays that are already right (C-contiguous,
// exact dtype: arguments are declared noconvert), check shapes, then release
// the GIL around the kernel call. The Python layer (reluscope/_validation.py)
// does the user-facing conversion once, so nothing is copied here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include "runtime/memory_spans.hpp"

namespace rs {

namespace py = pybind11;

using FloatArray = py::array_t<float, py::array::c_style>;
using Int64Array = py::array_t<std::int64_t, py::array::c_style>;
using Int32Array = py::array_t<std::int32_t, py::array::c_style>;
using DoubleArray = py::array_t<double, py::array::c_style>;

inline std::string shape_string(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// Throws ValueError unless `a` has exactly the given shape.
inline void require_shape(const py::array& a, const char* name,
                          std::initializer_list<py::ssize_t> shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  py::ssize_t i = 0;
  for (py::ssize_t d : shape) ok = ok && a.shape(i++) == d;
  if (!ok) {
    std::string want = "(";
    i = 0;
    for (py::ssize_t d : shape) want += (i++ ? ", " : "") + std::to_string(d);
    want += shape.size() == 1 ? ",)" : ")";
    throw py::value_error(std::string(name) + " has shape " + shape_string(a) + ", expected " +
                          want);
  }
}

inline void require_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) +
                          "-dimensional, got shape " + shape_string(a));
}

// `object` as the array it must already be (C-contiguous, element type T), or a
// TypeError that names the argument: pybind11's own message for a constructor
// lists every argument of every overload instead.
template <class T>
py::array_t<T, py::array::c_style> exact_array(const py::handle& object, const char* name) {
  if (!py::isinstance<py::array_t<T, py::array::c_style>>(object))
    throw py::type_error(std::string(name) + " must be a C-contiguous numpy array of dtype " +
                         py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                         py::str(py::type::of(object)).cast<std::string>() +
                         (py::isinstance<py::array>(object)
                              ? " of dtype " + py::str(object.attr("dtype")).cast<std::string>()
                              : std::string()));
  return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(object);
}

// The same, with None for "not given".
template <class T>
std::optional<py::array_t<T, py::array::c_style>> optional_array(const py::handle& object,
                                                                 const char* name) {
  if (object.is_none()) return std::nullopt;
  return exact_array<T>(object, name);
}

// An array argument and its name, for require_apart.
struct NamedArray {
  const py::array* array;  // null: an optional argument not given
  const char* name;
};

// Throws ValueError when an array the kernel writes shares memory with another
// of its arguments: the kernels' threads would read elements that other
// threads have already overwritten, so the result would depend on timing.
// `same_allowed` names pairs (written, other) that may be the very same memory
// (same start and size), an in-place call the kernel supports; a partial
// overlap is refused all the same. Arrays are C-contiguous (noconvert), so
// each spans its size in bytes from its data pointer.
inline void require_apart(
    std::initializer_list<NamedArray> written, std::initializer_list<NamedArray> others,
    std::initializer_list<std::pair<const char*, const char*>> same_allowed = {}) {
  auto span = [](const py::array& a) {
    return memory_span(a.data(), static_cast<std::size_t>(a.nbytes()));
  };
  for (const NamedArray& w : written) {
    if (!w.array) continue;
    for (const NamedArray& o : others) {
      if (!o.array || w.array == o.array) continue;
      const MemorySpan ws = span(*w.array), os = span(*o.array);
      if (!overlap(ws, os)) continue;
      const bool same_memory = ws.begin == os.begin && ws.end == os.end;
      bool allowed = false;
      for (const auto& [a, b] : same_allowed)
        allowed = allowed || (std::string(a) == w.name && std::string(b) == o.name);
      if (same_memory && allowed) continue;
      throw py::value_error(std::string(w.name) + " shares memory with " + o.name +
                            (allowed ? " without being the same array: they may be one array, "
                                       "or apart"
                                     : "; pass arrays that do not overlap"));
    }
  }
}

template <class T>
T* mutable_data(py::array_t<T, py::array::c_style>& a, const char* name) {
  if (!a.writeable()) throw py::value_error(std::string(name) + " must be writeable");
  return a.mutable_data();
}

void bind_dense(py::module_& m);
void bind_loss(py::module_& m);
void bind_optim(py::module_& m);
void bind_runtime(py::module_& m);
void bind_cpu_profiles(py::module_& m);
void bind_train(py::module_& m);
void bind_experiments(py::module_& m);
void bind_stats(py::module_& m);

}  // namespace rs
