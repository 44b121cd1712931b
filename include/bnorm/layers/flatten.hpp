// bnorm/layers/flatten.hpp: (N, d1, d2, ...) -> (N, d1*d2*...), without copying.
//
// The features come in memory order: for a channels_last input that is H, W, C (not
// PyTorch's C, H, W), which matters only when weights are exchanged with other tools.
#pragma once

#include "bnorm/layers/layer.hpp"

namespace bnorm {

class Flatten : public Layer {
 public:
  std::string kind() const override { return "flatten"; }
  std::string describe() const override { return "flatten"; }
  // Rank 2 to 5; a rank-2 input passes through.
  Shape output_shape(const Shape& input) const override;
  // Both return views of their argument's storage (Tensor::reshaped), never a copy.
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  Shape input_shape_;  // rank 0 until the first forward
  Layout input_layout_ = Layout::channels_first;
};

}  // namespace bnorm
