// python/bindings.hpp: the parts of the `bnorm` Python module, bound by bnorm_module.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace bnorm::python {

void bind_layers(pybind11::module_& m);      // BatchNorm1d/2d/3d (layer_bindings.cpp)
void bind_functional(pybind11::module_& f);  // bnorm.functional (functional_bindings.cpp)

}  // namespace bnorm::python
