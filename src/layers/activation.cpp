// Element-wise activations: the layer checks shapes and keeps the output; the loops are the
// kernels of bnorm/kernels/activation.hpp. Backward reads the saved output only.
#include "bnorm/layers/activation.hpp"

#include <stdexcept>
#include <string>

namespace bnorm {

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
  kernels::activation_forward(activation_, x.data_f32(), y.data_f32(), x.numel());  // data_f32 throws unless f32
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
  kernels::activation_backward(activation_, saved_output_.data_f32(), dy.data_f32(), dx.data_f32(), dy.numel());
  return dx;
}

}  // namespace bnorm
