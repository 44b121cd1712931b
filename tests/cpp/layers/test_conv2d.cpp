// Conv2d: oneDNN forward and backward against a direct convolution in double (both layouts,
// odd sizes, stride, padding, dilation, groups, bias on/off, N=1, 1x1 images), finite
// differences for dx, dW and db, "+=" accumulation of parameter gradients, the input-grad
// switch, shape changes, bad options and bad inputs, and a few values from PyTorch.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnorm/layers/conv2d.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

using testing::copy_of;
using testing::random_tensor;

// Memory offset of logical element (n, c, h, w) of a rank-4 tensor in either layout.
std::int64_t offset(const Shape& s, Layout layout, std::int64_t n, std::int64_t c, std::int64_t h,
                    std::int64_t w) {
  return layout == Layout::channels_first ? ((n * s[1] + c) * s[2] + h) * s[3] + w
                                          : ((n * s[2] + h) * s[3] + w) * s[1] + c;
}

// The direct convolution, in double, with every gradient from one loop nest: for each
// product y[n, co, oh, ow] += x[n, ci, ih, iw] * w[co, ci - g*cin_g, kh, kw] the backward
// terms are dx += dy * w, dW += dy * x, db += dy. `magnitude` (sum of |x*w| + |b|) sizes the
// float tolerance of each output.
struct ConvReference {
  std::vector<double> y, magnitude;  // logical (N, C_out, H_out, W_out) order
  std::vector<double> dx;            // logical (N, C_in, H, W) order
  std::vector<double> dw, db;        // PyTorch order
};

ConvReference conv_reference(const Conv2dOptions& o, const Tensor& x, const Tensor& w, const Tensor* b,
                             const Tensor* dy) {
  const Shape& s = x.shape();
  const std::int64_t n_ = s[0], cin = s[1], h = s[2], wd = s[3];
  const std::int64_t extent = o.dilation * (o.kernel_size - 1) + 1;
  const std::int64_t oh_ = (h + 2 * o.padding - extent) / o.stride + 1;
  const std::int64_t ow_ = (wd + 2 * o.padding - extent) / o.stride + 1;
  const std::int64_t cout = o.out_channels, cin_g = cin / o.groups, cout_g = cout / o.groups;
  const Shape ys{n_, cout, oh_, ow_};
  ConvReference r;
  r.y.assign(ys.numel(), 0.0);
  r.magnitude.assign(ys.numel(), 0.0);
  r.dx.assign(s.numel(), 0.0);
  r.dw.assign(w.numel(), 0.0);
  r.db.assign(cout, 0.0);
  const float* px = x.data_f32();
  const float* pw = w.data_f32();
  for (std::int64_t n = 0; n < n_; ++n)
    for (std::int64_t co = 0; co < cout; ++co)
      for (std::int64_t oh = 0; oh < oh_; ++oh)
        for (std::int64_t ow = 0; ow < ow_; ++ow) {
          const std::int64_t yi = ((n * cout + co) * oh_ + oh) * ow_ + ow;
          const double g = dy ? dy->data_f32()[offset(ys, dy->layout(), n, co, oh, ow)] : 0.0;
          double sum = b ? b->data_f32()[co] : 0.0;
          double mag = std::abs(sum);
          const std::int64_t group = co / cout_g;
          for (std::int64_t cg = 0; cg < cin_g; ++cg)
            for (std::int64_t kh = 0; kh < o.kernel_size; ++kh)
              for (std::int64_t kw = 0; kw < o.kernel_size; ++kw) {
                const std::int64_t ih = oh * o.stride - o.padding + kh * o.dilation;
                const std::int64_t iw = ow * o.stride - o.padding + kw * o.dilation;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                const std::int64_t ci = group * cin_g + cg;
                const std::int64_t wi = ((co * cin_g + cg) * o.kernel_size + kh) * o.kernel_size + kw;
                const double xv = px[offset(s, x.layout(), n, ci, ih, iw)];
                sum += xv * pw[wi];
                mag += std::abs(xv * pw[wi]);
                r.dx[((n * cin + ci) * h + ih) * wd + iw] += g * pw[wi];
                r.dw[wi] += g * xv;
              }
          r.y[yi] = sum;
          r.magnitude[yi] = mag;
          r.db[co] += g;
        }
  return r;
}

struct ConvCase {
  const char* name;
  std::int64_t n, cin, cout, h, w, kernel, stride, padding, dilation, groups;
  bool bias;
};

const ConvCase conv_cases[] = {
    {"odd_sizes", 3, 3, 5, 7, 9, 3, 1, 0, 1, 1, true},
    {"stride2_pad1_floor", 2, 4, 6, 8, 7, 3, 2, 1, 1, 1, true},  // (8+2-3)/2 rounds down
    {"dilation2", 2, 3, 4, 9, 8, 3, 1, 2, 2, 1, false},
    {"groups2", 2, 4, 6, 6, 5, 3, 1, 1, 1, 2, true},
    {"depthwise", 2, 4, 4, 6, 6, 3, 1, 1, 1, 4, false},
    {"n1_no_bias", 1, 2, 3, 5, 5, 3, 2, 0, 1, 1, false},
    {"image_1x1_pad1", 2, 3, 4, 1, 1, 3, 1, 1, 1, 1, true},
    {"kernel1", 1, 5, 2, 4, 3, 1, 1, 0, 1, 1, true},
    {"all_options", 2, 4, 6, 11, 10, 3, 2, 2, 2, 2, true},
    {"channels32_blocked", 2, 32, 32, 6, 5, 3, 1, 1, 1, 1, false},  // oneDNN's blocked kernels
    {"first_layer_1_to_32", 3, 1, 32, 7, 7, 3, 1, 1, 1, 1, true},
};

Conv2dOptions options_of(const ConvCase& c, Layout layout) {
  return {.in_channels = c.cin, .out_channels = c.cout, .kernel_size = c.kernel, .stride = c.stride,
          .padding = c.padding, .dilation = c.dilation, .groups = c.groups, .bias = c.bias, .layout = layout};
}

void randomize_parameters(Layer& layer, Rng& rng) {
  for (ParameterRef& p : layer.parameters()) {
    float* v = p.value->data_f32();
    for (std::int64_t i = 0; i < p.value->numel(); ++i) v[i] = static_cast<float>(0.5 * rng.normal());
  }
}

class Conv2dCases : public ::testing::TestWithParam<std::tuple<ConvCase, Layout>> {};

TEST_P(Conv2dCases, ForwardAndBackwardMatchDirectLoops) {
  const auto& [c, layout] = GetParam();
  Rng rng(11);
  Conv2d conv(options_of(c, layout));
  randomize_parameters(conv, rng);
  const Tensor x = random_tensor({c.n, c.cin, c.h, c.w}, layout, rng);
  const Tensor y = conv.forward(x);
  ASSERT_TRUE(y.shape() == conv.output_shape(x.shape())) << y.describe();
  ASSERT_EQ(y.layout(), layout);
  const Tensor dy = random_tensor(y.shape(), layout, rng);
  const Tensor dx = conv.backward(dy);
  const ConvReference r = conv_reference(conv.options(), x, conv.weight(), c.bias ? &conv.bias() : nullptr, &dy);

  const Shape& ys = y.shape();
  for (std::int64_t n = 0; n < ys[0]; ++n)
    for (std::int64_t co = 0; co < ys[1]; ++co)
      for (std::int64_t h = 0; h < ys[2]; ++h)
        for (std::int64_t w = 0; w < ys[3]; ++w) {
          const std::int64_t i = ((n * ys[1] + co) * ys[2] + h) * ys[3] + w;
          ASSERT_NEAR(y.data_f32()[offset(ys, layout, n, co, h, w)], r.y[i], 1e-5 * r.magnitude[i] + 1e-6)
              << conv.describe() << " y(" << n << ", " << co << ", " << h << ", " << w << ")";
        }
  // Gradients: sums of at most a few hundred products of N(0, 1) and N(0, 0.25) values.
  const Shape& xs = x.shape();
  for (std::int64_t n = 0; n < xs[0]; ++n)
    for (std::int64_t ci = 0; ci < xs[1]; ++ci)
      for (std::int64_t h = 0; h < xs[2]; ++h)
        for (std::int64_t w = 0; w < xs[3]; ++w)
          ASSERT_NEAR(dx.data_f32()[offset(xs, layout, n, ci, h, w)], r.dx[((n * xs[1] + ci) * xs[2] + h) * xs[3] + w],
                      1e-4)
              << conv.describe() << " dx(" << n << ", " << ci << ", " << h << ", " << w << ")";
  for (std::int64_t i = 0; i < conv.weight().numel(); ++i)
    ASSERT_NEAR(conv.weight_grad().data_f32()[i], r.dw[i], 1e-4 * (1 + std::abs(r.dw[i]))) << conv.describe() << " dW[" << i << "]";
  if (c.bias) {
    for (std::int64_t co = 0; co < c.cout; ++co)
      ASSERT_NEAR(conv.bias_grad().data_f32()[co], r.db[co], 1e-4 * (1 + std::abs(r.db[co]))) << conv.describe() << " db[" << co << "]";
  }
}

TEST_P(Conv2dCases, FiniteDifferences) {
  const auto& [c, layout] = GetParam();
  Rng rng(5);
  Conv2d conv(options_of(c, layout));
  randomize_parameters(conv, rng);
  testing::expect_gradients_match(conv, random_tensor({c.n, c.cin, c.h, c.w}, layout, rng),
                                  {.max_checks_per_tensor = 24});
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<ConvCase, Layout>>& info) {
  return std::string(std::get<0>(info.param).name) +
         (std::get<1>(info.param) == Layout::channels_first ? "_nchw" : "_nhwc");
}

INSTANTIATE_TEST_SUITE_P(Layouts, Conv2dCases,
                         ::testing::Combine(::testing::ValuesIn(conv_cases),
                                            ::testing::Values(Layout::channels_first, Layout::channels_last)),
                         case_name);

TEST(Conv2d, ParametersAreNamedZeroAndShapedLikePyTorch) {
  Conv2d conv({.in_channels = 4, .out_channels = 6, .kernel_size = 3, .groups = 2});
  const auto params = conv.parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "weight");
  EXPECT_EQ(params[0].role, ParameterRole::weight);
  EXPECT_TRUE(params[0].value->shape() == (Shape{6, 2, 3, 3})) << params[0].value->describe();
  EXPECT_EQ(params[1].name, "bias");
  EXPECT_EQ(params[1].role, ParameterRole::bias);
  EXPECT_TRUE(params[1].value->shape() == (Shape{6}));
  for (const ParameterRef& p : params)
    for (std::int64_t i = 0; i < p.value->numel(); ++i) {
      ASSERT_EQ(p.value->data_f32()[i], 0.0f);
      ASSERT_EQ(p.grad->data_f32()[i], 0.0f);
    }
  EXPECT_EQ(conv.parameter_count(), 6 * 2 * 9 + 6);
  Conv2d no_bias({.in_channels = 4, .out_channels = 6, .bias = false});
  EXPECT_EQ(no_bias.parameters().size(), 1u);
  EXPECT_EQ(conv.kind(), "conv");
  EXPECT_EQ(conv.describe(), "conv(4 -> 6, kernel=3, stride=1, padding=0, dilation=1, groups=2, channels_first)");
}

TEST(Conv2d, ParameterGradientsAccumulateAndInputGradCanBeSkipped) {
  for (Layout layout : {Layout::channels_first, Layout::channels_last}) {
    Rng rng(3);
    Conv2d conv({.in_channels = 3, .out_channels = 16, .stride = 2, .padding = 1, .layout = layout});
    randomize_parameters(conv, rng);
    const Tensor x = random_tensor({2, 3, 9, 9}, layout, rng);
    const Tensor dy = random_tensor(conv.output_shape(x.shape()), layout, rng);
    conv.forward(x);
    conv.backward(dy);
    const Tensor once_w = copy_of(conv.weight_grad()), once_b = copy_of(conv.bias_grad());
    conv.set_compute_input_grad(false);
    const Tensor dx = conv.backward(dy);  // a second backward of the same forward
    EXPECT_FALSE(dx.defined());
    for (std::int64_t i = 0; i < once_w.numel(); ++i)
      ASSERT_NEAR(conv.weight_grad().data_f32()[i], 2 * once_w.data_f32()[i], 1e-5 * (1 + std::abs(once_w.data_f32()[i])));
    for (std::int64_t i = 0; i < once_b.numel(); ++i)
      ASSERT_NEAR(conv.bias_grad().data_f32()[i], 2 * once_b.data_f32()[i], 1e-5 * (1 + std::abs(once_b.data_f32()[i])));
    conv.zero_grad();
    EXPECT_EQ(conv.weight_grad().data_f32()[0], 0.0f);
  }
}

TEST(Conv2d, NewInputShapeRebuildsThePrimitives) {
  Rng rng(8);
  Conv2d conv({.in_channels = 2, .out_channels = 3, .padding = 1, .layout = Layout::channels_last});
  randomize_parameters(conv, rng);
  for (const Shape& s : {Shape{2, 2, 5, 5}, Shape{1, 2, 7, 4}, Shape{2, 2, 5, 5}}) {
    const Tensor x = random_tensor(s, Layout::channels_last, rng);
    const Tensor y = conv.forward(x);
    const ConvReference r = conv_reference(conv.options(), x, conv.weight(), &conv.bias(), nullptr);
    const Shape& ys = y.shape();
    ASSERT_TRUE(ys == (Shape{s[0], 3, s[2], s[3]})) << y.describe();
    for (std::int64_t n = 0; n < ys[0]; ++n)
      for (std::int64_t co = 0; co < 3; ++co)
        for (std::int64_t h = 0; h < ys[2]; ++h)
          for (std::int64_t w = 0; w < ys[3]; ++w) {
            const std::int64_t i = ((n * 3 + co) * ys[2] + h) * ys[3] + w;
            ASSERT_NEAR(y.data_f32()[offset(ys, Layout::channels_last, n, co, h, w)], r.y[i], 1e-5 * r.magnitude[i] + 1e-6);
          }
    EXPECT_NE(conv.implementation(), "");
  }
}

TEST(Conv2d, RejectsBadOptions) {
  const Conv2dOptions good{.in_channels = 4, .out_channels = 6};
  auto expect_rejected = [](Conv2dOptions o, const char* fragment) {
    try {
      Conv2d conv(o);
      ADD_FAILURE() << "accepted " << fragment;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  Conv2dOptions o = good;
  o.in_channels = 0;
  expect_rejected(o, "in_channels");
  o = good;
  o.out_channels = -1;
  expect_rejected(o, "out_channels");
  o = good;
  o.kernel_size = 0;
  expect_rejected(o, "kernel_size");
  o = good;
  o.stride = 0;
  expect_rejected(o, "stride");
  o = good;
  o.padding = -1;
  expect_rejected(o, "padding");
  o = good;
  o.dilation = 0;
  expect_rejected(o, "dilation");
  o = good;
  o.groups = 0;
  expect_rejected(o, "groups");
  o = good;
  o.groups = 4;  // divides 4 but not 6
  expect_rejected(o, "groups must divide");
}

// The message names the layer and every shape involved.
void expect_invalid(const std::function<void()>& f, std::vector<std::string> fragments) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning " << fragments[0];
  } catch (const std::invalid_argument& e) {
    for (const std::string& s : fragments) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
  }
}

TEST(Conv2d, RejectsBadInputs) {
  Conv2d conv({.in_channels = 3, .out_channels = 4, .kernel_size = 3, .dilation = 2});
  expect_invalid([&] { conv.output_shape({2, 3, 8}); }, {"conv(3 -> 4", "rank 4", "(2, 3, 8)"});
  expect_invalid([&] { conv.output_shape({2, 5, 8, 8}); }, {"C=3", "(2, 5, 8, 8)"});
  expect_invalid([&] { conv.output_shape({2, 3, 4, 8}); }, {"larger than the padded input", "(2, 3, 4, 8)"});
  expect_invalid([&] { conv.forward(Tensor::zeros({2, 3, 8, 8}, Layout::channels_last)); },
                 {"channels_first", "channels_last", "(2, 3, 8, 8)"});
  expect_invalid([&] { conv.forward(Tensor()); }, {"undefined"});
  EXPECT_THROW(conv.backward(Tensor::zeros({2, 4, 4, 4})), std::logic_error);  // before forward
  conv.forward(Tensor::zeros({2, 3, 8, 8}));
  expect_invalid([&] { conv.backward(Tensor::zeros({2, 4, 5, 4})); }, {"(2, 4, 4, 4)", "(2, 4, 5, 4)"});
  expect_invalid([&] { conv.backward(Tensor::zeros({2, 4, 4, 4}, Layout::channels_last)); }, {"dy", "channels_last"});
  conv.weight() = Tensor::zeros({4, 3, 2, 2});  // a loader replaced it with the wrong shape
  EXPECT_THROW(conv.forward(Tensor::zeros({2, 3, 8, 8})), std::logic_error);
}

// PyTorch 1.13, torch.nn.functional.conv2d in double, generated with /usr/bin/python3:
//   x[i] = sin(0.37 i + 0.1), w[i] = cos(0.23 i) / 3, b[c] = 0.1 c - 0.15, dy[i] = sin(0.71 i) (flat
//   PyTorch-order indices); conv2d(x, w, b, stride=1, padding=1, dilation=2, groups=2) on
//   x: (1, 2, 5, 6), w: (4, 1, 3, 3); y.backward(dy).
TEST(Conv2d, MatchesPyTorch) {
  // y: (1, 4, 3, 4)
  const std::vector<double> expected_y{-0.1990325, -0.09398359, -0.2420743, -0.2054147, 0.05160557, 0.07189888, 0.3252622, 0.1462945, 0.1941156, 0.3713278, 0.1409196, 0.1068089, -0.5533182, -0.7362861, -0.5051272, -0.4366315, 0.240362, 0.3175778, 0.2686037, 0.2941739, -0.6484252, -0.7768816, -0.6257376, -0.5225581, 0.1964544, 0.2021951, 0.4046743, 0.2469084, 0.4779065, 0.6648516, 0.3912952, 0.3485408, -0.1338399, -0.1999865, -0.110101, -0.1675754, 0.4892485, 0.5838418, 0.5783227, 0.5652968, -0.442123, -0.5432866, -0.4039767, -0.3099933, 0.6355734, 0.745522, 0.8861503, 0.7572004};
  const std::vector<double> expected_dx{-0.05638691, -0.02971981, -0.4727705, 0.004718337, -0.4796807, -0.3264976, 0.02899042, -0.02928935, 0.8784385, -0.1240102, 0.7957566, 0.4921116, 0.04522797, 0.07104845, -0.4186775, 0.099447, -0.3539769, -0.1929175, -0.2143396, -0.2892135, 0.5112238, -0.350995, 0.3243585, 0.1005099, 0.1261507, 0.1393115, -0.1730362, 0.1486779, -0.06632581, 0.02892385, -0.4245413, -0.5846552, -0.6085929, -0.4712247, -0.5187173, -0.3324372, 0.5601076, 0.7108689, 0.8987373, 0.4343529, 0.6695994, 0.4066057, -0.1631344, -0.1771907, -0.2631802, -0.01207312, -0.1109771, -0.04197916, -0.03605605, -0.1715394, 0.119451, -0.469005, -0.1725846, -0.1860275, 0.1729079, 0.3113399, 0.2026396, 0.4526021, 0.347536, 0.2676847};
  const std::vector<double> expected_dw{-0.6894388, -3.027136, -1.482957, 4.598502, 1.410058, -1.351969, 1.878237, 3.909731, 2.368484, 1.157621, 1.043774, -1.9506, -0.7135524, 3.026709, 2.504372, -1.584042, -1.341879, 1.384141, -3.302786, -4.054196, -1.49636, 0.5590717, -2.928553, -5.221599, 2.436303, 3.102005, 0.2423609, 4.221007, 2.595432, 0.09078063, 1.664808, 5.237975, 4.201673, -3.865235, -1.939496, 0.745487};
  const std::vector<double> expected_db{1.788995, 0.3645855, -2.239521, 2.402836};
  Conv2d conv({.in_channels = 2, .out_channels = 4, .kernel_size = 3, .stride = 1, .padding = 1,
               .dilation = 2, .groups = 2});
  Tensor x = Tensor::empty({1, 2, 5, 6});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data_f32()[i] = static_cast<float>(std::sin(0.37 * i + 0.1));
  for (std::int64_t i = 0; i < conv.weight().numel(); ++i)
    conv.weight().data_f32()[i] = static_cast<float>(std::cos(0.23 * i) / 3);
  for (std::int64_t c = 0; c < 4; ++c) conv.bias().data_f32()[c] = static_cast<float>(0.1 * c - 0.15);
  const Tensor y = conv.forward(x);
  ASSERT_TRUE(y.shape() == (Shape{1, 4, 3, 4})) << y.describe();
  Tensor dy = Tensor::empty(y.shape());
  for (std::int64_t i = 0; i < dy.numel(); ++i) dy.data_f32()[i] = static_cast<float>(std::sin(0.71 * i));
  const Tensor dx = conv.backward(dy);
  auto expect_all_near = [](const char* what, const float* got, const std::vector<double>& want) {
    for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 2e-6 * (1 + std::abs(want[i]))) << what << "[" << i << "]";
  };
  ASSERT_EQ(static_cast<std::size_t>(dx.numel()), expected_dx.size());
  expect_all_near("y", y.data_f32(), expected_y);
  expect_all_near("dx", dx.data_f32(), expected_dx);
  expect_all_near("dW", conv.weight_grad().data_f32(), expected_dw);
  expect_all_near("db", conv.bias_grad().data_f32(), expected_db);
}

// Timing of the VGG-style layers in both layouts (forward + backward, the shapes of a
// Fashion-MNIST batch of 128). Not a test: run with
//   bnorm_layers_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_Timing*'
TEST(Conv2dBenchmark, DISABLED_Timing) {
  struct Problem {
    std::int64_t cin, cout, hw;
  };
  for (const Problem& pr : {Problem{1, 32, 28}, Problem{32, 32, 28}, Problem{32, 64, 14}, Problem{64, 64, 14}})
    for (Layout layout : {Layout::channels_first, Layout::channels_last}) {
      Rng rng(1);
      Conv2d conv({.in_channels = pr.cin, .out_channels = pr.cout, .padding = 1, .bias = false, .layout = layout});
      randomize_parameters(conv, rng);
      conv.set_compute_input_grad(pr.cin != 1);  // the first layer needs no dx
      const Tensor x = random_tensor({128, pr.cin, pr.hw, pr.hw}, layout, rng);
      const Tensor dy = random_tensor(conv.output_shape(x.shape()), layout, rng);
      double best_fwd = 1e9, best_bwd = 1e9;
      for (int rep = 0; rep < 12; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        conv.forward(x);
        const auto t1 = std::chrono::steady_clock::now();
        conv.backward(dy);
        const auto t2 = std::chrono::steady_clock::now();
        if (rep < 2) continue;  // warm-up
        best_fwd = std::min(best_fwd, std::chrono::duration<double, std::milli>(t1 - t0).count());
        best_bwd = std::min(best_bwd, std::chrono::duration<double, std::milli>(t2 - t1).count());
      }
      std::printf("%-60s %s  fwd %7.2f ms  bwd %7.2f ms  total %7.2f ms\n  %s\n", conv.describe().c_str(),
                  x.shape().to_string().c_str(), best_fwd, best_bwd, best_fwd + best_bwd,
                  conv.implementation().c_str());
    }
}

}  // namespace
}  // namespace bnorm
