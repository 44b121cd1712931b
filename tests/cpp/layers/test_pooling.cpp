// MaxPool2d, AvgPool2d, GlobalAvgPool2d: forward and backward against plain loops in double
// for both layouts (odd sizes, floor of the output size, padding, overlapping windows, N=1),
// finite differences, PyTorch's tie and padding rules on hand-derived values, the input-grad
// switch, bad options and bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnorm/layers/pooling.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

using testing::random_tensor;

std::int64_t offset(const Shape& s, Layout layout, std::int64_t n, std::int64_t c, std::int64_t h,
                    std::int64_t w) {
  return layout == Layout::channels_first ? ((n * s[1] + c) * s[2] + h) * s[3] + w
                                          : ((n * s[2] + h) * s[3] + w) * s[1] + c;
}

// A tensor of distinct values 0.1 apart in random order: no ties, so max pooling has a
// derivative everywhere and finite differences with step 0.01 never change the winner.
Tensor distinct_values(const Shape& shape, Layout layout, Rng& rng) {
  Tensor t = Tensor::empty(shape, layout);
  std::vector<std::int64_t> order(static_cast<std::size_t>(t.numel()));
  std::iota(order.begin(), order.end(), 0);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data_f32()[i] = 0.1f * static_cast<float>(order[i] - t.numel() / 2);
  return t;
}

// Reference pooling in double over logical indices: y, and dx for the given dy.
struct PoolReference {
  std::vector<double> y, dx;  // logical NCHW order
};

PoolReference pool_reference(bool max, const Pool2dOptions& o, const Tensor& x, const Tensor& dy) {
  const Shape& s = x.shape();
  const std::int64_t k = o.kernel_size, st = o.stride ? o.stride : k, p = o.padding;
  const std::int64_t oh_ = (s[2] + 2 * p - k) / st + 1, ow_ = (s[3] + 2 * p - k) / st + 1;
  const Shape ys{s[0], s[1], oh_, ow_};
  PoolReference r;
  r.y.assign(ys.numel(), 0.0);
  r.dx.assign(s.numel(), 0.0);
  for (std::int64_t n = 0; n < s[0]; ++n)
    for (std::int64_t c = 0; c < s[1]; ++c)
      for (std::int64_t oh = 0; oh < oh_; ++oh)
        for (std::int64_t ow = 0; ow < ow_; ++ow) {
          const double g = dy.data_f32()[offset(ys, dy.layout(), n, c, oh, ow)];
          double best = -std::numeric_limits<double>::infinity(), sum = 0;
          std::int64_t best_i = -1;
          for (std::int64_t kh = 0; kh < k; ++kh)
            for (std::int64_t kw = 0; kw < k; ++kw) {
              const std::int64_t ih = oh * st - p + kh, iw = ow * st - p + kw;
              if (ih < 0 || ih >= s[2] || iw < 0 || iw >= s[3]) continue;  // padding: -inf or 0
              const std::int64_t i = ((n * s[1] + c) * s[2] + ih) * s[3] + iw;
              const double v = x.data_f32()[offset(s, x.layout(), n, c, ih, iw)];
              sum += v;
              if (v > best) best = v, best_i = i;
              if (!max) r.dx[i] += g / static_cast<double>(k * k);
            }
          r.y[((n * s[1] + c) * oh_ + oh) * ow_ + ow] = max ? best : sum / static_cast<double>(k * k);
          if (max) r.dx[best_i] += g;
        }
  return r;
}

struct PoolCase {
  const char* name;
  std::int64_t n, c, h, w, kernel, stride, padding;
};

const PoolCase pool_cases[] = {
    {"k2_odd_sizes_floor", 2, 3, 7, 9, 2, 0, 0},
    {"k3_s2_p1", 2, 5, 8, 7, 3, 2, 1},
    {"k3_s1_p1_overlapping", 1, 4, 5, 6, 3, 1, 1},
    {"k2_s1", 3, 2, 4, 5, 2, 1, 0},
    {"k2_p1", 1, 3, 5, 4, 2, 2, 1},
    {"k1_image_1x1", 2, 6, 1, 1, 1, 0, 0},
    {"channels32", 2, 32, 6, 6, 2, 2, 0},
};

class PoolCases : public ::testing::TestWithParam<std::tuple<PoolCase, Layout, bool>> {};

std::unique_ptr<Layer> make_pool(bool max, const Pool2dOptions& o) {
  if (max) return std::make_unique<MaxPool2d>(o);
  return std::make_unique<AvgPool2d>(o);
}

TEST_P(PoolCases, ForwardAndBackwardMatchLoops) {
  const auto& [c, layout, max] = GetParam();
  const Pool2dOptions o{.kernel_size = c.kernel, .stride = c.stride, .padding = c.padding, .layout = layout};
  auto pool = make_pool(max, o);
  Rng rng(2);
  const Tensor x = distinct_values({c.n, c.c, c.h, c.w}, layout, rng);
  const Tensor y = pool->forward(x);
  ASSERT_TRUE(y.shape() == pool->output_shape(x.shape())) << y.describe();
  ASSERT_EQ(y.layout(), layout);
  const Tensor dy = random_tensor(y.shape(), layout, rng);
  const Tensor dx = pool->backward(dy);
  const PoolReference r = pool_reference(max, o, x, dy);
  const Shape& ys = y.shape();
  const Shape& xs = x.shape();
  for (std::int64_t n = 0; n < ys[0]; ++n)
    for (std::int64_t ch = 0; ch < ys[1]; ++ch) {
      for (std::int64_t h = 0; h < ys[2]; ++h)
        for (std::int64_t w = 0; w < ys[3]; ++w)
          ASSERT_NEAR(y.data_f32()[offset(ys, layout, n, ch, h, w)], r.y[((n * ys[1] + ch) * ys[2] + h) * ys[3] + w], 1e-5)
              << pool->describe() << " y(" << n << ", " << ch << ", " << h << ", " << w << ")";
      for (std::int64_t h = 0; h < xs[2]; ++h)
        for (std::int64_t w = 0; w < xs[3]; ++w)
          ASSERT_NEAR(dx.data_f32()[offset(xs, layout, n, ch, h, w)], r.dx[((n * xs[1] + ch) * xs[2] + h) * xs[3] + w], 1e-5)
              << pool->describe() << " dx(" << n << ", " << ch << ", " << h << ", " << w << ")";
    }
}

TEST_P(PoolCases, FiniteDifferences) {
  const auto& [c, layout, max] = GetParam();
  auto pool = make_pool(max, {.kernel_size = c.kernel, .stride = c.stride, .padding = c.padding, .layout = layout});
  Rng rng(6);
  testing::expect_gradients_match(*pool, distinct_values({c.n, c.c, c.h, c.w}, layout, rng));
}

std::string pool_case_name(const ::testing::TestParamInfo<std::tuple<PoolCase, Layout, bool>>& info) {
  return std::string(std::get<2>(info.param) ? "max_" : "avg_") + std::get<0>(info.param).name +
         (std::get<1>(info.param) == Layout::channels_first ? "_nchw" : "_nhwc");
}

INSTANTIATE_TEST_SUITE_P(Layouts, PoolCases,
                         ::testing::Combine(::testing::ValuesIn(pool_cases),
                                            ::testing::Values(Layout::channels_first, Layout::channels_last),
                                            ::testing::Bool()),
                         pool_case_name);

// PyTorch routes the gradient of a tied window to its first maximum in row-major order; a
// window clipped by the padding starts at its first real pixel.
TEST(MaxPool2d, TiesGoToTheFirstMaximum) {
  for (Layout layout : {Layout::channels_first, Layout::channels_last}) {
    MaxPool2d pool({.kernel_size = 3, .stride = 2, .padding = 1, .layout = layout});
    const Tensor x = Tensor::full({1, 2, 3, 3}, 1.5f, layout);
    const Tensor y = pool.forward(x);  // 2 x 2 windows: rows/cols {0,1}, {1,2}
    ASSERT_TRUE(y.shape() == (Shape{1, 2, 2, 2}));
    for (std::int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.data_f32()[i], 1.5f);
    const Tensor dx = pool.backward(Tensor::full(y.shape(), 1.0f, layout));
    // The clipped windows are rows x cols {0,1}x{0,1}, {0,1}x{1,2}, {1,2}x{0,1}, {1,2}x{1,2}: their
    // first pixels are (0,0), (0,1), (1,0), (1,1).
    const float expected[3][3] = {{1, 1, 0}, {1, 1, 0}, {0, 0, 0}};
    for (std::int64_t c = 0; c < 2; ++c)
      for (std::int64_t h = 0; h < 3; ++h)
        for (std::int64_t w = 0; w < 3; ++w)
          EXPECT_EQ(dx.data_f32()[offset(x.shape(), layout, 0, c, h, w)], expected[h][w])
              << to_string(layout) << " dx(" << c << ", " << h << ", " << w << ")";
  }
}

TEST(MaxPool2d, NaNPropagates) {
  MaxPool2d pool({.kernel_size = 2});
  Tensor x = Tensor::full({1, 1, 2, 2}, 1.0f);
  x.data_f32()[3] = std::numeric_limits<float>::quiet_NaN();
  const Tensor y = pool.forward(x);
  EXPECT_TRUE(std::isnan(y.data_f32()[0]));
}

// count_include_pad: the padded zeros count in the divisor. On a 2x2 image of ones, every 3x3
// window (stride 1, padding 1) covers all four pixels: 4/9.
TEST(AvgPool2d, CountsPaddingInTheDivisor) {
  AvgPool2d pool({.kernel_size = 3, .stride = 1, .padding = 1});
  const Tensor y = pool.forward(Tensor::full({1, 1, 2, 2}, 1.0f));
  ASSERT_TRUE(y.shape() == (Shape{1, 1, 2, 2}));
  for (std::int64_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y.data_f32()[i], 4.0f / 9.0f);
  const Tensor dx = pool.backward(Tensor::full({1, 1, 2, 2}, 1.0f));
  for (std::int64_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(dx.data_f32()[i], 4.0f / 9.0f);  // 4 windows each
}

TEST(GlobalAvgPool2d, MeanOverPixelsInBothLayouts) {
  for (Layout layout : {Layout::channels_first, Layout::channels_last}) {
    GlobalAvgPool2d gap(layout);
    Rng rng(1);
    const Tensor x = random_tensor({3, 5, 4, 3}, layout, rng);
    const Tensor y = gap.forward(x);
    ASSERT_TRUE(y.shape() == (Shape{3, 5}));
    for (std::int64_t n = 0; n < 3; ++n)
      for (std::int64_t c = 0; c < 5; ++c) {
        double sum = 0;
        for (std::int64_t h = 0; h < 4; ++h)
          for (std::int64_t w = 0; w < 3; ++w) sum += x.data_f32()[offset(x.shape(), layout, n, c, h, w)];
        EXPECT_NEAR(y.data_f32()[n * 5 + c], sum / 12, 1e-6);
      }
    const Tensor dy = random_tensor({3, 5}, Layout::channels_first, rng);
    const Tensor dx = gap.backward(dy);
    for (std::int64_t n = 0; n < 3; ++n)
      for (std::int64_t c = 0; c < 5; ++c)
        for (std::int64_t h = 0; h < 4; ++h)
          for (std::int64_t w = 0; w < 3; ++w)
            EXPECT_NEAR(dx.data_f32()[offset(x.shape(), layout, n, c, h, w)], dy.data_f32()[n * 5 + c] / 12, 1e-6);
    testing::expect_gradients_match(gap, x);
    EXPECT_EQ(gap.describe(), std::string("gap(") + to_string(layout) + ")");
  }
}

TEST(Pooling, InputGradCanBeSkipped) {
  const Tensor x = Tensor::full({1, 2, 4, 4}, 1.0f);
  MaxPool2d max_pool({.kernel_size = 2});
  AvgPool2d avg_pool({.kernel_size = 2});
  GlobalAvgPool2d gap;
  for (Layer* layer : std::vector<Layer*>{&max_pool, &avg_pool, &gap}) {
    layer->set_compute_input_grad(false);
    const Tensor y = layer->forward(x);
    EXPECT_FALSE(layer->backward(Tensor::full(y.shape(), 1.0f)).defined()) << layer->describe();
    EXPECT_TRUE(layer->parameters().empty());
  }
}

void expect_invalid(const std::function<void()>& f, std::vector<std::string> fragments) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning " << fragments[0];
  } catch (const std::invalid_argument& e) {
    for (const std::string& s : fragments) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
  }
}

TEST(Pooling, RejectsBadOptions) {
  expect_invalid([] { MaxPool2d({.kernel_size = 0}); }, {"maxpool", "kernel_size"});
  expect_invalid([] { AvgPool2d({.kernel_size = 2, .stride = -1}); }, {"avgpool", "stride"});
  expect_invalid([] { MaxPool2d({.kernel_size = 3, .padding = -1}); }, {"padding must be >= 0"});
  expect_invalid([] { MaxPool2d({.kernel_size = 2, .padding = 2}); }, {"at most kernel_size / 2", "padding=2"});
  expect_invalid([] { AvgPool2d({.kernel_size = 3, .padding = 2}); }, {"at most kernel_size / 2"});
  EXPECT_NO_THROW(MaxPool2d({.kernel_size = 2, .padding = 1}));
  EXPECT_EQ(MaxPool2d({.kernel_size = 2}).describe(), "maxpool(kernel=2, stride=2, padding=0, channels_first)");
  EXPECT_EQ(AvgPool2d({.kernel_size = 3, .stride = 1, .layout = Layout::channels_last}).describe(),
            "avgpool(kernel=3, stride=1, padding=0, channels_last)");
}

TEST(Pooling, RejectsBadInputs) {
  MaxPool2d pool({.kernel_size = 3});
  expect_invalid([&] { pool.output_shape({2, 3, 8}); }, {"maxpool(kernel=3", "rank 4", "(2, 3, 8)"});
  expect_invalid([&] { pool.output_shape({2, 3, 2, 8}); }, {"larger than the padded input", "(2, 3, 2, 8)"});
  expect_invalid([&] { pool.forward(Tensor::zeros({1, 3, 4, 4}, Layout::channels_last)); },
                 {"channels_first", "channels_last", "(1, 3, 4, 4)"});
  expect_invalid([&] { pool.forward(Tensor()); }, {"undefined"});
  EXPECT_THROW(pool.backward(Tensor::zeros({1, 3, 1, 1})), std::logic_error);  // before forward
  pool.forward(Tensor::zeros({1, 3, 4, 4}));
  expect_invalid([&] { pool.backward(Tensor::zeros({1, 3, 2, 1})); }, {"(1, 3, 1, 1)", "(1, 3, 2, 1)"});
  AvgPool2d avg({.kernel_size = 2, .layout = Layout::channels_last});
  expect_invalid([&] { avg.forward(Tensor::zeros({1, 3, 4, 4})); }, {"avgpool", "channels_last", "channels_first"});
  GlobalAvgPool2d gap;
  expect_invalid([&] { gap.output_shape({4, 3}); }, {"gap(channels_first)", "(4, 3)"});
  EXPECT_THROW(gap.backward(Tensor::zeros({4, 3})), std::logic_error);
  gap.forward(Tensor::zeros({4, 3, 2, 2}));
  expect_invalid([&] { gap.backward(Tensor::zeros({4, 2})); }, {"(4, 3)", "(4, 2)"});
}

}  // namespace
}  // namespace bnorm
