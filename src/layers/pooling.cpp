// MaxPool2d, AvgPool2d, GlobalAvgPool2d in plain loops.
//
// One loop nest serves both layouts. The channels are split into an outer part, walked plane
// by plane, and an inner part, contiguous at every pixel:
//   channels_first (nchw): outer = C, inner = 1   (a plane is H*W contiguous values)
//   channels_last  (nhwc): outer = 1, inner = C   (a pixel is C contiguous values)
// so element (n, c, ih, iw) sits at n*C*H*W + c_outer*H*W + (ih*W + iw)*pixel_stride + c_inner
// with pixel_stride = inner. The innermost loop runs over the inner channels, which the
// compiler vectorizes for nhwc; OpenMP splits the (n, c_outer) pairs, which never share an
// element, so the backward scatters need no atomics.
#include "bnorm/layers/pooling.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace bnorm {
namespace {

struct PlaneGeometry {
  std::int64_t n = 0, h = 0, w = 0;
  std::int64_t outer = 0, inner = 0;  // channel split, see the file comment
  std::int64_t image() const { return outer * inner * h * w; }
  std::int64_t plane() const { return inner == 1 ? h * w : 0; }  // stride between outer channels
};

PlaneGeometry geometry_of(const Shape& s, Layout layout) {
  const bool last = layout == Layout::channels_last;
  return {.n = s[0], .h = s[2], .w = s[3], .outer = last ? 1 : s[1], .inner = last ? s[1] : 1};
}

// Clipped window of output index o along one axis.
struct Span {
  std::int64_t begin, end;
};
inline Span window(std::int64_t o, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                   std::int64_t size) {
  const std::int64_t start = o * stride - padding;
  return {std::max<std::int64_t>(start, 0), std::min(start + kernel, size)};
}

Pool2dOptions checked(const char* kind, Pool2dOptions o) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument(std::string(kind) + ": " + why + " (kernel_size=" + std::to_string(o.kernel_size) +
                                ", stride=" + std::to_string(o.stride) + ", padding=" +
                                std::to_string(o.padding) + ")");
  };
  if (o.kernel_size < 1) fail("kernel_size must be >= 1");
  if (o.stride < 0) fail("stride must be >= 1 (or 0 for stride = kernel_size)");
  if (o.padding < 0) fail("padding must be >= 0");
  if (o.padding > o.kernel_size / 2) fail("padding must be at most kernel_size / 2, as in PyTorch");
  if (o.stride == 0) o.stride = o.kernel_size;
  return o;
}

std::string describe_pool(const char* kind, const Pool2dOptions& o) {
  return std::string(kind) + "(kernel=" + std::to_string(o.kernel_size) + ", stride=" + std::to_string(o.stride) +
         ", padding=" + std::to_string(o.padding) + ", " + to_string(o.layout) + ")";
}

Shape pool_output_shape(const std::string& describe, const Pool2dOptions& o, const Shape& input) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument(describe + ": " + why + ", got input " + input.to_string());
  };
  if (input.rank() != 4) fail("expects an input of rank 4 (N, C, H, W)");
  if (input[0] < 1 || input[1] < 1 || input[2] < 1 || input[3] < 1) fail("expects N, C, H and W >= 1");
  if (input[2] + 2 * o.padding < o.kernel_size || input[3] + 2 * o.padding < o.kernel_size)
    fail("the kernel is larger than the padded input (" + std::to_string(input[2] + 2 * o.padding) + " x " +
         std::to_string(input[3] + 2 * o.padding) + ")");
  if (input[2] * input[3] > std::numeric_limits<std::int32_t>::max()) fail("H * W must fit in 32 bits");
  auto out = [&](std::int64_t size) { return (size + 2 * o.padding - o.kernel_size) / o.stride + 1; };
  return Shape{input[0], input[1], out(input[2]), out(input[3])};
}

void check_tensor(const std::string& describe, Layout layout, const Tensor& t, const char* what) {
  if (!t.defined()) throw std::invalid_argument(describe + ": " + what + " is an undefined tensor");
  if (t.dtype() != DType::f32 || t.device() != Device::cpu)
    throw std::invalid_argument(describe + ": " + what + " must be f32 on the cpu, got " + t.describe());
  if (t.rank() == 4 && t.layout() != layout)
    throw std::invalid_argument(describe + ": " + what + " must be " + to_string(layout) +
                                " like the layer (no silent conversion), got " + t.describe());
}

void check_dy(const std::string& describe, const Shape& input, const Shape& expected, const Tensor& dy) {
  if (input.rank() == 0) throw std::logic_error(describe + ": backward called before forward");
  if (!(dy.shape() == expected))
    throw std::invalid_argument(describe + ": backward expects dy " + expected.to_string() + " for the input " +
                                input.to_string() + ", got " + dy.describe());
}

}  // namespace

// ---- MaxPool2d

MaxPool2d::MaxPool2d(const Pool2dOptions& options) : options_(checked("maxpool", options)) {}

std::string MaxPool2d::describe() const { return describe_pool("maxpool", options_); }

Shape MaxPool2d::output_shape(const Shape& input) const {
  return pool_output_shape(describe(), options_, input);
}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_tensor(describe(), options_.layout, x, "the input");
  const Shape out_shape = output_shape(x.shape());
  Tensor y = Tensor::empty(out_shape, options_.layout);
  argmax_.resize(static_cast<std::size_t>(y.numel()));
  const PlaneGeometry in = geometry_of(x.shape(), options_.layout);
  const PlaneGeometry out = geometry_of(out_shape, options_.layout);
  const auto& o = options_;
  const float* px = x.data_f32();
  float* py = y.data_f32();
  std::int32_t* parg = argmax_.data();
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t n = 0; n < in.n; ++n)
    for (std::int64_t co = 0; co < in.outer; ++co) {
      const float* xp = px + n * in.image() + co * in.plane();
      const std::int64_t out_base = n * out.image() + co * out.plane();
      for (std::int64_t oh = 0; oh < out.h; ++oh) {
        const Span hs = window(oh, o.kernel_size, o.stride, o.padding, in.h);
        for (std::int64_t ow = 0; ow < out.w; ++ow) {
          const Span ws = window(ow, o.kernel_size, o.stride, o.padding, in.w);
          float* yv = py + out_base + (oh * out.w + ow) * out.inner;           // [inner]
          std::int32_t* av = parg + out_base + (oh * out.w + ow) * out.inner;  // [inner]
          const auto first = static_cast<std::int32_t>(hs.begin * in.w + ws.begin);
          for (std::int64_t ci = 0; ci < in.inner; ++ci) {
            yv[ci] = -std::numeric_limits<float>::infinity();
            av[ci] = first;
          }
          for (std::int64_t ih = hs.begin; ih < hs.end; ++ih)
            for (std::int64_t iw = ws.begin; iw < ws.end; ++iw) {
              const auto pixel = static_cast<std::int32_t>(ih * in.w + iw);
              const float* xv = xp + pixel * in.inner;
              // Strictly greater keeps the first maximum; a NaN always wins (PyTorch's rule).
              for (std::int64_t ci = 0; ci < in.inner; ++ci) {
                const float v = xv[ci];
                const bool take = v > yv[ci] || std::isnan(v);
                yv[ci] = take ? v : yv[ci];
                av[ci] = take ? pixel : av[ci];
              }
            }
        }
      }
    }
  input_shape_ = x.shape();
  return y;
}

Tensor MaxPool2d::backward(const Tensor& dy) {
  check_tensor(describe(), options_.layout, dy, "dy");
  check_dy(describe(), input_shape_, input_shape_.rank() ? output_shape(input_shape_) : Shape{}, dy);
  if (!compute_input_grad_) return Tensor();
  Tensor dx = Tensor::zeros(input_shape_, options_.layout);
  const PlaneGeometry in = geometry_of(input_shape_, options_.layout);
  const PlaneGeometry out = geometry_of(dy.shape(), options_.layout);
  const float* pdy = dy.data_f32();
  float* pdx = dx.data_f32();
  const std::int32_t* parg = argmax_.data();
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t n = 0; n < in.n; ++n)
    for (std::int64_t co = 0; co < in.outer; ++co) {
      float* dxp = pdx + n * in.image() + co * in.plane();
      const std::int64_t out_base = n * out.image() + co * out.plane();
      for (std::int64_t pixel = 0; pixel < out.h * out.w; ++pixel) {
        const float* g = pdy + out_base + pixel * out.inner;
        const std::int32_t* a = parg + out_base + pixel * out.inner;
        for (std::int64_t ci = 0; ci < in.inner; ++ci) dxp[a[ci] * in.inner + ci] += g[ci];
      }
    }
  return dx;
}

// ---- AvgPool2d

AvgPool2d::AvgPool2d(const Pool2dOptions& options) : options_(checked("avgpool", options)) {}

std::string AvgPool2d::describe() const { return describe_pool("avgpool", options_); }

Shape AvgPool2d::output_shape(const Shape& input) const {
  return pool_output_shape(describe(), options_, input);
}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_tensor(describe(), options_.layout, x, "the input");
  const Shape out_shape = output_shape(x.shape());
  Tensor y = Tensor::empty(out_shape, options_.layout);
  const PlaneGeometry in = geometry_of(x.shape(), options_.layout);
  const PlaneGeometry out = geometry_of(out_shape, options_.layout);
  const auto& o = options_;
  // count_include_pad: with ceil_mode off no window reaches past the padding, so every divisor
  // is kernel^2.
  const float scale = 1.0f / static_cast<float>(o.kernel_size * o.kernel_size);
  const float* px = x.data_f32();
  float* py = y.data_f32();
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t n = 0; n < in.n; ++n)
    for (std::int64_t co = 0; co < in.outer; ++co) {
      const float* xp = px + n * in.image() + co * in.plane();
      float* yp = py + n * out.image() + co * out.plane();
      for (std::int64_t oh = 0; oh < out.h; ++oh) {
        const Span hs = window(oh, o.kernel_size, o.stride, o.padding, in.h);
        for (std::int64_t ow = 0; ow < out.w; ++ow) {
          const Span ws = window(ow, o.kernel_size, o.stride, o.padding, in.w);
          float* yv = yp + (oh * out.w + ow) * out.inner;  // [inner]
          std::fill_n(yv, in.inner, 0.0f);
          for (std::int64_t ih = hs.begin; ih < hs.end; ++ih)
            for (std::int64_t iw = ws.begin; iw < ws.end; ++iw) {
              const float* xv = xp + (ih * in.w + iw) * in.inner;
              for (std::int64_t ci = 0; ci < in.inner; ++ci) yv[ci] += xv[ci];
            }
          for (std::int64_t ci = 0; ci < in.inner; ++ci) yv[ci] *= scale;
        }
      }
    }
  input_shape_ = x.shape();
  return y;
}

Tensor AvgPool2d::backward(const Tensor& dy) {
  check_tensor(describe(), options_.layout, dy, "dy");
  check_dy(describe(), input_shape_, input_shape_.rank() ? output_shape(input_shape_) : Shape{}, dy);
  if (!compute_input_grad_) return Tensor();
  Tensor dx = Tensor::zeros(input_shape_, options_.layout);
  const PlaneGeometry in = geometry_of(input_shape_, options_.layout);
  const PlaneGeometry out = geometry_of(dy.shape(), options_.layout);
  const auto& o = options_;
  const float scale = 1.0f / static_cast<float>(o.kernel_size * o.kernel_size);
  const float* pdy = dy.data_f32();
  float* pdx = dx.data_f32();
  // dx[i] = sum over the windows that contain i of dy / kernel^2.
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t n = 0; n < in.n; ++n)
    for (std::int64_t co = 0; co < in.outer; ++co) {
      float* dxp = pdx + n * in.image() + co * in.plane();
      const float* dyp = pdy + n * out.image() + co * out.plane();
      for (std::int64_t oh = 0; oh < out.h; ++oh) {
        const Span hs = window(oh, o.kernel_size, o.stride, o.padding, in.h);
        for (std::int64_t ow = 0; ow < out.w; ++ow) {
          const Span ws = window(ow, o.kernel_size, o.stride, o.padding, in.w);
          const float* g = dyp + (oh * out.w + ow) * out.inner;  // [inner]
          for (std::int64_t ih = hs.begin; ih < hs.end; ++ih)
            for (std::int64_t iw = ws.begin; iw < ws.end; ++iw) {
              float* dxv = dxp + (ih * in.w + iw) * in.inner;
              for (std::int64_t ci = 0; ci < in.inner; ++ci) dxv[ci] += g[ci] * scale;
            }
        }
      }
    }
  return dx;
}

// ---- GlobalAvgPool2d

std::string GlobalAvgPool2d::describe() const { return std::string("gap(") + to_string(layout_) + ")"; }

Shape GlobalAvgPool2d::output_shape(const Shape& input) const {
  if (input.rank() != 4 || input[0] < 1 || input[1] < 1 || input[2] < 1 || input[3] < 1)
    throw std::invalid_argument(describe() + ": expects an input of rank 4 (N, C, H, W) with every size >= 1, got " +
                                input.to_string());
  return Shape{input[0], input[1]};
}

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
  check_tensor(describe(), layout_, x, "the input");
  const Shape out_shape = output_shape(x.shape());
  Tensor y = Tensor::empty(out_shape);  // (N, C): one layout only
  const PlaneGeometry in = geometry_of(x.shape(), layout_);
  const std::int64_t pixels = in.h * in.w;
  const std::int64_t channels = in.outer * in.inner;
  const float* px = x.data_f32();
  float* py = y.data_f32();
  // Sums in double: a plane can be large, and this is cheap next to the layers around it.
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t n = 0; n < in.n; ++n)
    for (std::int64_t co = 0; co < in.outer; ++co) {
      const float* xp = px + n * in.image() + co * in.plane();
      std::vector<double> sums(static_cast<std::size_t>(in.inner), 0.0);
      for (std::int64_t pixel = 0; pixel < pixels; ++pixel)
        for (std::int64_t ci = 0; ci < in.inner; ++ci) sums[ci] += xp[pixel * in.inner + ci];
      for (std::int64_t ci = 0; ci < in.inner; ++ci)
        py[n * channels + co * in.inner + ci] = static_cast<float>(sums[ci] / static_cast<double>(pixels));
    }
  input_shape_ = x.shape();
  return y;
}

Tensor GlobalAvgPool2d::backward(const Tensor& dy) {
  if (!dy.defined()) throw std::invalid_argument(describe() + ": dy is an undefined tensor");
  check_dy(describe(), input_shape_, input_shape_.rank() ? output_shape(input_shape_) : Shape{}, dy);
  if (!compute_input_grad_) return Tensor();
  Tensor dx = Tensor::empty(input_shape_, layout_);
  const PlaneGeometry in = geometry_of(input_shape_, layout_);
  const std::int64_t pixels = in.h * in.w;
  const std::int64_t channels = in.outer * in.inner;
  const float scale = 1.0f / static_cast<float>(pixels);
  const float* pdy = dy.data_f32();
  float* pdx = dx.data_f32();
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t n = 0; n < in.n; ++n)
    for (std::int64_t co = 0; co < in.outer; ++co) {
      float* dxp = pdx + n * in.image() + co * in.plane();
      const float* g = pdy + n * channels + co * in.inner;  // [inner]
      for (std::int64_t pixel = 0; pixel < pixels; ++pixel)
        for (std::int64_t ci = 0; ci < in.inner; ++ci) dxp[pixel * in.inner + ci] = g[ci] * scale;
    }
  return dx;
}

}  // namespace bnorm
