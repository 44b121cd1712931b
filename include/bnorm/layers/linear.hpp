// bnorm/layers/linear.hpp: fully connected layer, y = x W^T + b.
//
// x: (N, in_features) -> y: (N, out_features). weight: (out_features, in_features), PyTorch's
// order; bias: (out_features), absent when bias = false (the usual case before BatchNorm,
// whose beta replaces it). The matrix products run through oneDNN (not a hand-written GEMM).
// Parameters start at zero: initialization is the model's job (bnorm/model/init.hpp).
//
// forward(x) keeps a reference to x (no copy) for backward: do not modify x in between.
// backward(dy) returns dx = dy W (written; undefined when compute_input_grad is off) and ADDS
// dW = dy^T x and db = sum over the batch of dy to weight_grad / bias_grad.
#pragma once

#include <cstdint>

#include "bnorm/layers/layer.hpp"

namespace bnorm {

struct LinearOptions {
  std::int64_t in_features = 0;
  std::int64_t out_features = 0;
  bool bias = true;
};

class Linear : public Layer {
 public:
  // Throws std::invalid_argument unless in_features and out_features are >= 1.
  explicit Linear(const LinearOptions& options);
  ~Linear() override;

  std::string kind() const override { return "linear"; }
  std::string describe() const override;  // "linear(784 -> 100, bias=false)"
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  // weight (role weight), bias (role bias; absent without bias).
  std::vector<ParameterRef> parameters() override;

  const LinearOptions& options() const { return options_; }
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }  // undefined without bias
  const Tensor& weight_grad() const { return weight_grad_; }
  const Tensor& bias_grad() const { return bias_grad_; }

 private:
  void check_parameters() const;

  LinearOptions options_;
  Tensor weight_, weight_grad_, bias_, bias_grad_;  // (out, in), (out)
  Tensor saved_input_;                              // (N, in)
};

}  // namespace bnorm
