// layer_gradcheck.hpp: Caffe-style finite-difference check of any Layer's backward.
//
// For a fixed random projection r, the scalar L(x, params) = sum_i y_i * r_i has
//   dL/dx = backward(r)            and   dL/dparam = the gradient backward accumulates,
// which must match central differences (L(v + h) - L(v - h)) / 2h at every checked entry.
// The layers compute in float32, so the comparison has a float-sized tolerance: |analytic -
// numeric| <= atol + rtol * max(|analytic|, |numeric|). Inputs at kinks (ReLU at 0, ties in
// max pooling) have no derivative; tests pick inputs away from them.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "bnorm/layers/layer.hpp"
#include "bnorm/util/random.hpp"

namespace bnorm::testing {

inline Tensor random_tensor(const Shape& shape, Layout layout, Rng& rng, double scale = 1.0) {
  Tensor t = Tensor::empty(shape, layout);
  float* p = t.data_f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(scale * rng.normal());
  return t;
}

inline Tensor copy_of(const Tensor& t) {
  Tensor c = Tensor::empty(t.shape(), t.layout());
  std::copy_n(t.data_f32(), t.numel(), c.data_f32());
  return c;
}

struct GradcheckOptions {
  double step = 1e-2;
  double rtol = 2e-2;
  double atol = 2e-3;
  std::int64_t max_checks_per_tensor = 64;  // entries checked, spread evenly over the tensor
  std::uint64_t seed = 7;
};

// Runs forward/backward on `x` in the layer's current mode and checks dx (when the layer
// computes it) and every parameter gradient. Stochastic layers must be deterministic across
// the repeated forwards (e.g. Dropout in eval mode) for the check to mean anything.
inline void expect_gradients_match(Layer& layer, const Tensor& x, const GradcheckOptions& options = {}) {
  Rng rng(options.seed);
  Tensor x_work = copy_of(x);
  const Tensor y0 = layer.forward(x_work);
  const Tensor r = random_tensor(y0.shape(), y0.layout(), rng);
  auto loss = [&]() {
    const Tensor y = layer.forward(x_work);
    double sum = 0.0;
    for (std::int64_t i = 0; i < y.numel(); ++i)
      sum += static_cast<double>(y.data_f32()[i]) * r.data_f32()[i];
    return sum;
  };

  layer.zero_grad();
  layer.forward(x_work);
  const Tensor dx = layer.backward(r);
  std::vector<Tensor> analytic_param_grads;
  for (ParameterRef& p : layer.parameters()) analytic_param_grads.push_back(copy_of(*p.grad));

  auto check = [&](const std::string& what, float* values, std::int64_t count, const float* analytic) {
    const std::int64_t stride = std::max<std::int64_t>(1, count / options.max_checks_per_tensor);
    for (std::int64_t i = 0; i < count; i += stride) {
      const float saved = values[i];
      values[i] = static_cast<float>(saved + options.step);
      const double up = loss();
      values[i] = static_cast<float>(saved - options.step);
      const double down = loss();
      values[i] = saved;
      const double numeric = (up - down) / (2 * options.step);
      const double a = analytic[i];
      const double bound = options.atol + options.rtol * std::max(std::abs(a), std::abs(numeric));
      EXPECT_LE(std::abs(a - numeric), bound)
          << layer.describe() << ": d loss / d " << what << "[" << i << "]: backward " << a
          << ", finite difference " << numeric;
    }
  };
  if (layer.compute_input_grad()) {
    ASSERT_TRUE(dx.defined()) << layer.describe() << ": backward returned no dx";
    ASSERT_TRUE(dx.shape() == x.shape()) << dx.describe() << " vs " << x.describe();
    check("x", x_work.data_f32(), x_work.numel(), dx.data_f32());
  }
  std::size_t k = 0;
  for (ParameterRef& p : layer.parameters())
    check(p.name, p.value->data_f32(), p.value->numel(), analytic_param_grads[k++].data_f32());
}

}  // namespace bnorm::testing
