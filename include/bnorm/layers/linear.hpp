// bnorm/layers/linear.hpp: fully connected layer, y = x W^T + b.
//
// x: (N, in_features) -> y: (N, out_features). weight: (out_features, in_features), PyTorch's
// order; bias: (out_features), absent when bias = false (the usual case before BatchNorm,
// whose beta replaces it). The matrix products run through oneDNN (not a hand-written GEMM).
// Parameters start at zero: initialization is the model's job (bnorm/model/init.hpp).
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
  explicit Linear(const LinearOptions& options);
  ~Linear() override;

  std::string kind() const override { return "linear"; }
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::vector<ParameterRef> parameters() override;

  const LinearOptions& options() const { return options_; }
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }

 private:
  LinearOptions options_;
  Tensor weight_, weight_grad_, bias_, bias_grad_;
  Tensor saved_input_;
};

}  // namespace bnorm
