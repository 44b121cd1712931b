// bnorm/kernels/activation.hpp: element-wise activation kernels over flat float32 buffers.
//
// Pure functions of n contiguous values (any shape, any layout: each element is independent).
// Forward maps x to y; backward maps the saved output y and dy to dx, because each derivative
// here is a function of the output (sigmoid' = y(1-y), tanh' = 1-y^2, relu' = [y > 0]). The
// buffers may alias element for element (y == x, dx == dy) but must not overlap otherwise.
// Large n is split between OpenMP threads by parallel_elementwise (bnorm/util/parallel.hpp);
// every element's value is the same at any thread count.
#pragma once

#include <cstdint>

namespace bnorm::kernels {

enum class ActivationKind : std::uint8_t { relu, sigmoid, tanh };

void activation_forward(ActivationKind kind, const float* x, float* y, std::int64_t n);
void activation_backward(ActivationKind kind, const float* y, const float* dy, float* dx, std::int64_t n);

// e^x to within 2 ulp where the result is a normal float (x in [-87.3, 88.7]), rounded to the
// denormals below that, 0 below -104, +inf above ln(FLT_MAX), NaN for NaN: the range
// reduction and polynomial of Cephes' expf, written without calls or branches so that a loop
// over it vectorizes (std::exp does not). Exposed for the tests.
float exp_vectorizable(float x);

}  // namespace bnorm::kernels
