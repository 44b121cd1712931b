// bnorm/layers/pooling.hpp: MaxPool2d, AvgPool2d and global average pooling.
//
// MaxPool2d / AvgPool2d: (N, C, H, W) -> (N, C, H_out, W_out) in the layer's layout, with
// H_out = floor((H + 2*padding - kernel) / stride) + 1 (PyTorch, ceil_mode=false). Max pooling
// pads with -inf and sends each gradient to the first maximum of its window (PyTorch's rule;
// a NaN counts as a maximum, so it propagates); average pooling counts padded zeros in the
// divisor (count_include_pad=true, PyTorch's default), so every window divides by kernel^2.
// GlobalAvgPool2d: (N, C, H, W) -> (N, C), the mean over H and W.
// As in PyTorch, padding may be at most kernel/2 (so that no window lies in the padding only).
// Plain loops (OpenMP over images and channel planes), for either layout; an input whose
// layout differs from the layer's is rejected, never converted silently.
// backward(dy) returns dx, undefined when compute_input_grad is off; none has parameters.
#pragma once

#include <cstdint>
#include <vector>

#include "bnorm/layers/layer.hpp"

namespace bnorm {

struct Pool2dOptions {
  std::int64_t kernel_size = 2;
  std::int64_t stride = 0;  // 0: equal to kernel_size
  std::int64_t padding = 0;
  Layout layout = Layout::channels_first;
};

class MaxPool2d : public Layer {
 public:
  // Throws std::invalid_argument for kernel_size < 1, stride < 0, padding < 0 or
  // padding > kernel_size / 2.
  explicit MaxPool2d(const Pool2dOptions& options);
  std::string kind() const override { return "maxpool"; }
  std::string describe() const override;  // "maxpool(kernel=2, stride=2, padding=0, channels_first)"
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  const Pool2dOptions& options() const { return options_; }  // stride resolved (never 0)

 private:
  Pool2dOptions options_;
  Shape input_shape_;  // of the last forward; rank 0 before it
  // Per output element, in the output's memory order: the pixel index ih * W + iw of the
  // chosen input in its (n, c) plane.
  std::vector<std::int32_t> argmax_;
};

class AvgPool2d : public Layer {
 public:
  // The same option rules as MaxPool2d.
  explicit AvgPool2d(const Pool2dOptions& options);
  std::string kind() const override { return "avgpool"; }
  std::string describe() const override;  // "avgpool(kernel=2, stride=2, padding=0, channels_first)"
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  const Pool2dOptions& options() const { return options_; }  // stride resolved (never 0)

 private:
  Pool2dOptions options_;
  Shape input_shape_;
};

class GlobalAvgPool2d : public Layer {
 public:
  explicit GlobalAvgPool2d(Layout layout = Layout::channels_first) : layout_(layout) {}
  std::string kind() const override { return "gap"; }
  std::string describe() const override;  // "gap(channels_first)"
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;  // dy: (N, C)

 private:
  Layout layout_;
  Shape input_shape_;
};

}  // namespace bnorm
