// bnorm/layers/pooling.hpp: MaxPool2d, AvgPool2d and global average pooling.
//
// MaxPool2d / AvgPool2d: (N, C, H, W) -> (N, C, H_out, W_out) in the layer's layout, with
// H_out = floor((H + 2*padding - kernel) / stride) + 1 (PyTorch, ceil_mode=false). Max pooling
// pads with -inf and sends each gradient to the first maximum of its window (PyTorch's rule);
// average pooling counts padded zeros in the divisor (count_include_pad=true, PyTorch's
// default). GlobalAvgPool2d: (N, C, H, W) -> (N, C), the mean over H and W.
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
  explicit MaxPool2d(const Pool2dOptions& options);
  std::string kind() const override { return "maxpool"; }
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  Pool2dOptions options_;
  Shape input_shape_;
  std::vector<std::int32_t> argmax_;  // per output element: offset of the chosen input in its image
};

class AvgPool2d : public Layer {
 public:
  explicit AvgPool2d(const Pool2dOptions& options);
  std::string kind() const override { return "avgpool"; }
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  Pool2dOptions options_;
  Shape input_shape_;
};

class GlobalAvgPool2d : public Layer {
 public:
  explicit GlobalAvgPool2d(Layout layout = Layout::channels_first) : layout_(layout) {}
  std::string kind() const override { return "gap"; }
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  Layout layout_;
  Shape input_shape_;
};

}  // namespace bnorm
