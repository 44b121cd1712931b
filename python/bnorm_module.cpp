// PLACEHOLDER: the Python module is being written.
#include <pybind11/pybind11.h>
PYBIND11_MODULE(bnorm, m) { m.doc() = "bnorm (work in progress)"; }
