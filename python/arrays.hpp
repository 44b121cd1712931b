// python/arrays.hpp: the NumPy boundary of the `bnorm` Python module.
//
// Every array that enters the module goes through these checks, so the rules are written
// once:
//  - Data arrays (x, dy) must be numpy.ndarray of dtype float32; anything else raises
//    (float64 is NOT cast silently: that would hide a 2x memory cost and a rounding step).
//  - A float32 array that is not C-contiguous (a transposed or sliced view) or not aligned
//    is copied once into a contiguous one. That copy happens here, at the Python boundary,
//    and nowhere else; a contiguous array is used in place (no copy).
//  - Arrays are given in physical order. With channels_last=True an array (N, ..., C) is
//    the tensor with logical shape (N, C, ...) and Layout::channels_last: the same memory.
//  - Per-channel arrays (weight, bias, running statistics) are float32 of shape (C,);
//    arrays updated in place (running statistics in bnorm.functional) must also be
//    writable and contiguous, since a copy would silently drop the update.
//
// Not here: the classes and functions themselves (layer_bindings.cpp,
// functional_bindings.cpp).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bnorm/tensor/tensor.hpp"

namespace bnorm::python {

namespace py = pybind11;

using FloatArray = py::array_t<float, py::array::c_style>;
using DoubleArray = py::array_t<double, py::array::c_style>;
using Dims = std::vector<std::int64_t>;

// Argument types for signatures. They accept any Python object (the checks below give
// errors that name shapes and dtypes, which pybind11's overload errors cannot); they exist
// so that help() shows "numpy.ndarray" rather than "handle".
inline int accept_any(PyObject*) { return 1; }
class ArrayArg : public py::object {
 public:
  PYBIND11_OBJECT_DEFAULT(ArrayArg, py::object, accept_any)
};
class OptionalArrayArg : public py::object {  // None allowed
 public:
  PYBIND11_OBJECT_DEFAULT(OptionalArrayArg, py::object, accept_any)
};
class MomentsArg : public py::object {  // (count, mean, m2)
 public:
  PYBIND11_OBJECT_DEFAULT(MomentsArg, py::object, accept_any)
};

// "(2, 3, 4)".
std::string dims_string(const Dims& dims);
// The physical shape of an array.
Dims dims_of(const py::array& array);
// For error messages: "a float64 array of shape (2, 3)", "a list".
std::string describe_object(const py::handle& object);

// The shape pattern an input of this rank must have, e.g. "(N, 3, H, W)" or
// "(N, H, W, 3)" with channels_last; "(N, C, ...)" names when channels is 0.
std::string expected_pattern(int rank, std::int64_t channels, bool channels_last);

// x or dy: a float32 ndarray of rank 2..5 (the caller checks which ranks it accepts),
// made C-contiguous and aligned (copying only when it is not). `what` names the argument
// in error messages ("BatchNorm2d(3).forward: x"), `expected` the shapes accepted.
FloatArray data_array(const py::handle& object, const std::string& what,
                      const std::string& expected = "(N, C, ...) or (N, ..., C)");

// The logical (N, C, ...) shape of a physical array shape.
Shape logical_shape(const Dims& physical, bool channels_last);
Layout layout_of(bool channels_last);
// A tensor that borrows the array's memory (the caller keeps the array alive while the
// tensor is used). The kernels only read through it when it is an input.
Tensor tensor_view(const FloatArray& array, bool channels_last);

// A NumPy array that takes over a tensor's storage (no copy), with the given physical shape.
py::array to_numpy(Tensor tensor, const Dims& physical);

// A per-channel float32 array of shape (channels,), contiguous (copied when it is not).
FloatArray channel_array(const py::handle& object, std::int64_t channels, const std::string& what);
// A per-channel float32 array of shape (channels,) updated in place: must be writable,
// contiguous and aligned; never copied.
float* writable_channel_array(const py::handle& object, std::int64_t channels,
                              const std::string& what);
// A per-channel float64 array of shape (channels,) (moments), contiguous.
DoubleArray channel_array_f64(const py::handle& object, std::int64_t channels,
                              const std::string& what);

// A fresh float32 array of shape (channels,) holding a copy of `count` floats.
FloatArray copy_of(const float* data, std::int64_t count);

}  // namespace bnorm::python

namespace pybind11::detail {
template <>
struct handle_type_name<bnorm::python::ArrayArg> {
  static constexpr auto name = const_name("numpy.ndarray");
};
template <>
struct handle_type_name<bnorm::python::OptionalArrayArg> {
  static constexpr auto name = const_name("Optional[numpy.ndarray]");
};
template <>
struct handle_type_name<bnorm::python::MomentsArg> {
  static constexpr auto name = const_name("Tuple[int, numpy.ndarray, numpy.ndarray]");
};
}  // namespace pybind11::detail
