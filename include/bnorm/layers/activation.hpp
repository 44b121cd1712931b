// bnorm/layers/activation.hpp: element-wise activations ReLU, Sigmoid, Tanh.
//
// Shape and layout pass through. Backward uses the saved output where the derivative is a
// function of it (sigmoid' = y(1-y), tanh' = 1-y^2, relu' = [y > 0]), so no input is kept.
#pragma once

#include "bnorm/kernels/activation.hpp"
#include "bnorm/layers/layer.hpp"

namespace bnorm {

using Activation = kernels::ActivationKind;  // relu, sigmoid, tanh
const char* to_string(Activation activation);  // "relu", "sigmoid", "tanh"

class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(Activation activation) : activation_(activation) {}
  std::string kind() const override { return to_string(activation_); }
  std::string describe() const override { return kind(); }
  Shape output_shape(const Shape& input) const override { return input; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  Activation activation() const { return activation_; }

 private:
  Activation activation_;
  Tensor saved_output_;
};

}  // namespace bnorm
