// python/bnorm_module.cpp: the `bnorm` Python module (pybind11 + NumPy).
//
//   bnorm.BatchNorm1d / BatchNorm2d / BatchNorm3d   layers (layer_bindings.cpp)
//   bnorm.functional                                 kernels (functional_bindings.cpp)
//   bnorm.implementations(), selected_implementation()  the dispatch list, with reasons
//   bnorm.__version__
//
// Errors: std::invalid_argument (bad shapes, bad options) becomes ValueError; any other
// std::logic_error (calls out of order, e.g. backward before forward) becomes RuntimeError.
// The rules for arrays at the boundary are written once, in arrays.hpp.
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "bnorm/kernels/batchnorm.hpp"

#ifndef BNORM_VERSION
#error "BNORM_VERSION must be defined by the build (python/CMakeLists.txt)"
#endif

namespace bnorm::python {
namespace {

BatchNormProblem problem_of(const Dims& shape, bool channels_last) {
  return BatchNormProblem::from_shape(logical_shape(shape, channels_last), layout_of(channels_last));
}

// [(name, reason or None)] in dispatch order. Without a shape every reason is None.
std::vector<std::pair<std::string, std::optional<std::string>>> implementations(
    std::optional<Dims> shape, bool channels_last) {
  std::optional<BatchNormProblem> problem;
  if (shape) problem = problem_of(*shape, channels_last);
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  for (const BatchNormImpl& impl : batchnorm_implementations()) {
    std::optional<std::string> reason;
    if (problem)
      if (const char* why = impl.declines(*problem)) reason = why;
    out.emplace_back(impl.name, reason);
  }
  return out;
}

}  // namespace
}  // namespace bnorm::python

PYBIND11_MODULE(bnorm, m) {
  namespace py = pybind11;
  using namespace bnorm::python;

  m.doc() = R"doc(bnorm: batch normalization, exact and fast (Python bindings).

Layers BatchNorm1d, BatchNorm2d and BatchNorm3d behave like their torch.nn namesakes on
float32 numpy arrays, with an explicit backward(dy). bnorm.functional exposes the kernels.
Set BNORM_IMPL=reference|cpu_scalar|cpu_avx2 in the environment (before the first call)
to force one implementation.)doc";
  m.attr("__version__") = BNORM_VERSION;

  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::logic_error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  bind_layers(m);

  py::module_ functional = m.def_submodule("functional");
  bind_functional(functional);
  // So that `import bnorm.functional` works as well as `from bnorm import functional`.
  py::module_::import("sys").attr("modules")["bnorm.functional"] = functional;

  m.def("implementations", &implementations, py::arg("shape") = py::none(),
        py::arg("channels_last") = false,
        R"doc(The kernel implementations in dispatch order (best first, reference last), as a
list of (name, reason) pairs. With a shape (an input array's shape, (N, C, ...) or with
channels_last=True (N, ..., C)), reason is why that implementation declines the problem,
or None if it would run it; without a shape every reason is None.)doc");
  m.def(
      "selected_implementation",
      [](const Dims& shape, bool channels_last) -> std::string {
        return bnorm::batchnorm_select(problem_of(shape, channels_last)).name;
      },
      py::arg("shape"), py::arg("channels_last") = false,
      R"doc(The name of the implementation the kernels would run for an input of this shape
(honours BNORM_IMPL; ValueError if the forced one declines).)doc");
}
