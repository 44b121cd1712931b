// bnorm/layers/conv2d.hpp: 2-d convolution (cross-correlation, as in every framework).
//
// x: (N, C_in, H, W) -> y: (N, C_out, H_out, W_out) in the layer's layout (channels_first or
// channels_last), H_out = (H + 2*padding - dilation*(kernel-1) - 1) / stride + 1, likewise W.
// weight: (C_out, C_in/groups, kernel, kernel), PyTorch's order; bias: (C_out), absent when
// bias = false (before BatchNorm). Forward, backward-data and backward-weights run through
// oneDNN primitives, created once per input shape and cached by the layer (a new input shape
// rebuilds them: milliseconds, so keep the batch shape fixed in a training loop).
// Parameters start at zero: initialization is the model's job (bnorm/model/init.hpp).
//
// Activations stay in the tensor's plain layout (nchw or nhwc memory); the weights are
// reordered, each step, into the format oneDNN's kernel prefers (a few KiB). An input whose
// layout differs from the layer's is rejected, never converted silently.
// forward(x) keeps a reference to x (no copy) for backward: do not modify x in between.
// backward(dy) returns dx (written; undefined when compute_input_grad is off) and ADDS dW and
// db to weight_grad / bias_grad.
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
  // Throws std::invalid_argument for channels, kernel, stride, dilation or groups < 1,
  // padding < 0, or channel counts that groups does not divide.
  explicit Conv2d(const Conv2dOptions& options);
  ~Conv2d() override;

  std::string kind() const override { return "conv"; }
  // "conv(1 -> 32, kernel=3, stride=1, padding=1, dilation=1, groups=1, bias=false, channels_last)"
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  // weight (role weight), bias (role bias; absent without bias).
  std::vector<ParameterRef> parameters() override;

  const Conv2dOptions& options() const { return options_; }
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }  // undefined without bias
  const Tensor& weight_grad() const { return weight_grad_; }
  const Tensor& bias_grad() const { return bias_grad_; }
  // oneDNN's names for the kernels chosen for the last input shape ("" before the first
  // forward): "forward: brgconv:avx512_core; backward data: ...; backward weights: ...".
  std::string implementation() const;

 private:
  struct Primitives;  // oneDNN state, per input shape (conv2d.cpp)
  Primitives& primitives_for(const Shape& input);
  void check_input(const Tensor& x, const char* what) const;
  void check_parameters() const;

  Conv2dOptions options_;
  Tensor weight_, weight_grad_, bias_, bias_grad_;
  Tensor saved_input_;
  std::unique_ptr<Primitives> primitives_;
};

}  // namespace bnorm
