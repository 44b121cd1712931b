// bnorm/layers/conv2d.hpp: 2-d convolution (cross-correlation, as in every framework).
//
// x: (N, C_in, H, W) -> y: (N, C_out, H_out, W_out) in the layer's layout (channels_first or
// channels_last), H_out = (H + 2*padding - dilation*(kernel-1) - 1) / stride + 1, likewise W.
// weight: (C_out, C_in/groups, kernel, kernel), PyTorch's order; bias: (C_out), absent when
// bias = false (before BatchNorm). Forward, backward-data and backward-weights run through
// oneDNN primitives, created once per input shape and cached by the layer.
// Parameters start at zero: initialization is the model's job (bnorm/model/init.hpp).
#pragma once

#include <cstdint>
#include <memory>

#include "bnorm/layers/layer.hpp"

namespace bnorm {

struct Conv2dOptions {
  std::int64_t in_channels = 0;
  std::int64_t out_channels = 0;
  std::int64_t kernel_size = 3;  // square kernels
  std::int64_t stride = 1;
  std::int64_t padding = 0;
  std::int64_t dilation = 1;
  std::int64_t groups = 1;
  bool bias = true;
  Layout layout = Layout::channels_first;
};

class Conv2d : public Layer {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  ~Conv2d() override;

  std::string kind() const override { return "conv"; }
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::vector<ParameterRef> parameters() override;

  const Conv2dOptions& options() const { return options_; }
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }

 private:
  struct Primitives;  // oneDNN state, per input shape (conv2d.cpp)
  Primitives& primitives_for(const Shape& input);

  Conv2dOptions options_;
  Tensor weight_, weight_grad_, bias_, bias_grad_;
  Tensor saved_input_;
  std::unique_ptr<Primitives> primitives_;
};

}  // namespace bnorm
