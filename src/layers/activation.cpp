// Element-wise activations. Each element is independent, so a loop over memory order covers
// every shape and layout; large tensors are split between OpenMP threads (the result does not
// depend on the thread count). Backward reads the saved output only (activation.hpp).
#include "bnorm/layers/activation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace bnorm {
namespace {

// Below this many elements (128 KB of floats) an OpenMP region costs more than it saves.
constexpr std::int64_t parallel_min_elements = 1 << 15;

// f(i) for i in [0, n); the body is inlined so that simple bodies vectorize.
template <class F>
void for_each_element(std::int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n >= parallel_min_elements)
  for (std::int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace

const char* to_string(Activation activation) {
  switch (activation) {
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
  }
  return "?";
}

Tensor ActivationLayer::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument(kind() + ": forward of an undefined tensor");
  Tensor y = Tensor::empty(x.shape(), x.layout());
  const float* in = x.data_f32();  // throws unless f32 on the cpu
  float* out = y.data_f32();
  switch (activation_) {
    case Activation::relu:
      // max(x, 0); std::max returns its first argument when unordered, so NaN stays NaN.
      for_each_element(x.numel(), [=](std::int64_t i) { out[i] = std::max(in[i], 0.0f); });
      break;
    case Activation::sigmoid:
      // 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0: with e = e^-|x| <= 1 neither
      // form overflows, and both tails round to exactly 0 or 1 instead of NaN.
      for_each_element(x.numel(), [=](std::int64_t i) {
        const float e = std::exp(-std::abs(in[i]));
        out[i] = (in[i] >= 0.0f ? 1.0f : e) / (1.0f + e);
      });
      break;
    case Activation::tanh:
      for_each_element(x.numel(), [=](std::int64_t i) { out[i] = std::tanh(in[i]); });
      break;
  }
  saved_output_ = y;
  return y;
}

Tensor ActivationLayer::backward(const Tensor& dy) {
  if (!saved_output_.defined()) throw std::logic_error(kind() + ": backward called before forward");
  if (!dy.defined() || !(dy.shape() == saved_output_.shape()) ||
      (dy.rank() > 2 && dy.layout() != saved_output_.layout()))
    throw std::invalid_argument(kind() + ": backward expects dy shaped like the output " +
                                saved_output_.describe() + ", got " +
                                (dy.defined() ? dy.describe() : std::string("an undefined tensor")));
  if (!compute_input_grad_) return {};
  Tensor dx = Tensor::empty(dy.shape(), dy.layout());
  const float* y = saved_output_.data_f32();
  const float* g = dy.data_f32();
  float* out = dx.data_f32();
  switch (activation_) {
    case Activation::relu:  // relu'(x) = [y > 0] (0 at the kink, as PyTorch)
      for_each_element(dy.numel(), [=](std::int64_t i) { out[i] = y[i] > 0.0f ? g[i] : 0.0f; });
      break;
    case Activation::sigmoid:  // sigmoid'(x) = y (1 - y)
      for_each_element(dy.numel(), [=](std::int64_t i) { out[i] = g[i] * y[i] * (1.0f - y[i]); });
      break;
    case Activation::tanh:  // tanh'(x) = 1 - y^2
      for_each_element(dy.numel(), [=](std::int64_t i) { out[i] = g[i] * (1.0f - y[i] * y[i]); });
      break;
  }
  return dx;
}

}  // namespace bnorm
