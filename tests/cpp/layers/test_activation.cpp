// ReLU, Sigmoid, Tanh as Layers: values against the formulas in double, the tails of sigmoid,
// finite-difference gradients in both layouts, the OpenMP path on a large tensor, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "bnorm/layers/activation.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

using testing::random_tensor;

double reference(Activation a, double x) {
  switch (a) {
    case Activation::relu: return x > 0 ? x : 0;
    case Activation::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case Activation::tanh: return std::tanh(x);
  }
  return NAN;
}

double reference_derivative(Activation a, double x) {
  switch (a) {
    case Activation::relu: return x > 0 ? 1 : 0;
    case Activation::sigmoid: { const double s = reference(a, x); return s * (1 - s); }
    case Activation::tanh: { const double t = std::tanh(x); return 1 - t * t; }
  }
  return NAN;
}

// Values away from 0, where ReLU has its kink and finite differences straddle it.
Tensor away_from_zero(const Shape& shape, Layout layout, Rng& rng) {
  Tensor t = random_tensor(shape, layout, rng);
  float* p = t.data_f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = std::copysign(0.05f + std::abs(p[i]), p[i]);
  return t;
}

constexpr Activation all_activations[] = {Activation::relu, Activation::sigmoid, Activation::tanh};

TEST(Activation, NamesAndKinds) {
  EXPECT_STREQ(to_string(Activation::relu), "relu");
  EXPECT_STREQ(to_string(Activation::sigmoid), "sigmoid");
  EXPECT_STREQ(to_string(Activation::tanh), "tanh");
  ActivationLayer layer(Activation::tanh);
  EXPECT_EQ(layer.kind(), "tanh");
  EXPECT_EQ(layer.describe(), "tanh");
  EXPECT_TRUE(layer.output_shape({2, 3, 4, 5}) == Shape({2, 3, 4, 5}));
}

TEST(Activation, ForwardAndBackwardMatchFormulasOnLargeTensor) {
  // 3 * 2^15 + 7 elements: above the OpenMP threshold, with an odd tail.
  Rng rng(1);
  const Shape shape{3, 7, 67, 70};
  for (Activation a : all_activations) {
    ActivationLayer layer(a);
    const Tensor x = random_tensor(shape, Layout::channels_last, rng, 3.0);
    const Tensor dy = random_tensor(shape, Layout::channels_last, rng);
    const Tensor y = layer.forward(x);
    const Tensor dx = layer.backward(dy);
    ASSERT_TRUE(y.shape() == shape);
    EXPECT_EQ(y.layout(), Layout::channels_last);
    EXPECT_EQ(dx.layout(), Layout::channels_last);
    double worst_y = 0, worst_dx = 0;
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const double xi = x.data_f32()[i];
      worst_y = std::max(worst_y, std::abs(y.data_f32()[i] - reference(a, xi)));
      worst_dx = std::max(worst_dx, std::abs(dx.data_f32()[i] - dy.data_f32()[i] * reference_derivative(a, xi)));
    }
    EXPECT_LE(worst_y, 1e-6) << to_string(a);
    EXPECT_LE(worst_dx, 1e-5) << to_string(a);
  }
}

// The vectorizable e^x behind sigmoid, against double std::exp: relative error within 2^-22
// (2 ulp) over the whole normal range, exact specials.
TEST(Activation, VectorizableExpIsWithinTwoUlpAndHandlesSpecials) {
  double worst = 0;
  float worst_at = 0;
  for (float x = -87.3f; x <= 88.72f; x += 0.000731f) {
    const double want = std::exp(static_cast<double>(x));
    const double relative = std::abs(kernels::exp_vectorizable(x) - want) / want;
    if (relative > worst) worst = relative, worst_at = x;
  }
  EXPECT_LE(worst, std::ldexp(1.0, -22)) << "at x = " << worst_at;
  EXPECT_EQ(kernels::exp_vectorizable(0.0f), 1.0f);
  EXPECT_NEAR(kernels::exp_vectorizable(-100.0f), std::exp(-100.0), 2e-45);  // a denormal
  EXPECT_EQ(kernels::exp_vectorizable(-104.0f), 0.0f);
  EXPECT_EQ(kernels::exp_vectorizable(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(kernels::exp_vectorizable(100.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(kernels::exp_vectorizable(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(kernels::exp_vectorizable(std::numeric_limits<float>::quiet_NaN())));
}

// Sigmoid relative to the double formula, including the small values of the negative tail
// that an absolute tolerance would not see.
TEST(Activation, SigmoidIsRelativelyAccurateOverItsRange) {
  std::vector<float> x;
  for (float v = -87.0f; v <= 20.0f; v += 0.00173f) x.push_back(v);
  std::vector<float> y(x.size());
  kernels::activation_forward(Activation::sigmoid, x.data(), y.data(), static_cast<std::int64_t>(x.size()));
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = reference(Activation::sigmoid, x[i]);
    worst = std::max(worst, std::abs(y[i] - want) / want);
  }
  EXPECT_LE(worst, 4e-7);
}

TEST(Activation, SigmoidAndTanhTailsAreExactAndFinite) {
  float values[] = {-1e4f, -100.0f, -30.0f, 0.0f, 30.0f, 100.0f, 1e4f,
                    std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  const Tensor x = Tensor::view_of(values, {1, 9});
  ActivationLayer sigmoid(Activation::sigmoid);
  const Tensor s = sigmoid.forward(x);
  for (int i = 0; i < 9; ++i) {
    const double expected = 1.0 / (1.0 + std::exp(-static_cast<double>(values[i])));
    // Relative float precision, or the spacing of denormals (sigmoid(-100) = 3.7e-44).
    EXPECT_NEAR(s.data_f32()[i], expected, std::max(1e-7 * expected, 2e-45)) << "x = " << values[i];
  }
  EXPECT_EQ(s.data_f32()[0], 0.0f);
  EXPECT_EQ(s.data_f32()[6], 1.0f);
  // The gradient at the tails is 0, not NaN.
  const Tensor ds = sigmoid.backward(Tensor::full({1, 9}, 1.0f));
  for (int i = 0; i < 9; ++i) EXPECT_TRUE(std::isfinite(ds.data_f32()[i])) << "x = " << values[i];
  EXPECT_FLOAT_EQ(ds.data_f32()[3], 0.25f);

  ActivationLayer tanh_layer(Activation::tanh);
  const Tensor t = tanh_layer.forward(x);
  EXPECT_FLOAT_EQ(t.data_f32()[0], -1.0f);
  EXPECT_FLOAT_EQ(t.data_f32()[6], 1.0f);
  EXPECT_FLOAT_EQ(t.data_f32()[3], 0.0f);
}

TEST(Activation, ReluKeepsNanAndZeroesNegatives) {
  float values[] = {-2.0f, -0.0f, 0.0f, 3.5f, std::numeric_limits<float>::quiet_NaN()};
  ActivationLayer relu(Activation::relu);
  const Tensor y = relu.forward(Tensor::view_of(values, {5}));
  EXPECT_EQ(y.data_f32()[0], 0.0f);
  EXPECT_EQ(y.data_f32()[2], 0.0f);
  EXPECT_EQ(y.data_f32()[3], 3.5f);
  EXPECT_TRUE(std::isnan(y.data_f32()[4]));
  const Tensor dx = relu.backward(Tensor::full({5}, 2.0f));
  const float expected[] = {0.0f, 0.0f, 0.0f, 2.0f};  // 0 at the kink, as PyTorch
  for (int i = 0; i < 4; ++i) EXPECT_EQ(dx.data_f32()[i], expected[i]) << i;
}

TEST(Activation, GradientsMatchFiniteDifferences) {
  Rng rng(2);
  for (Activation a : all_activations) {
    for (Layout layout : {Layout::channels_first, Layout::channels_last}) {
      SCOPED_TRACE(std::string(to_string(a)) + " " + to_string(layout));
      ActivationLayer layer(a);
      testing::expect_gradients_match(layer, away_from_zero({2, 3, 4, 5}, layout, rng),
                                      {.step = 1e-2});
    }
    ActivationLayer flat(a);
    testing::expect_gradients_match(flat, away_from_zero({5, 7}, Layout::channels_first, rng));
  }
}

TEST(Activation, NoInputGradientWhenNotAsked) {
  ActivationLayer layer(Activation::sigmoid);
  layer.set_compute_input_grad(false);
  layer.forward(Tensor::full({2, 3}, 1.0f));
  EXPECT_FALSE(layer.backward(Tensor::full({2, 3}, 1.0f)).defined());
}

TEST(Activation, Errors) {
  ActivationLayer layer(Activation::relu);
  EXPECT_THROW(layer.backward(Tensor::zeros({2, 3})), std::logic_error);
  layer.forward(Tensor::zeros({2, 3, 4, 5}));
  try {
    layer.backward(Tensor::zeros({2, 3, 5, 4}));
    FAIL() << "a dy of another shape was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3, 4, 5)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(2, 3, 5, 4)"), std::string::npos) << e.what();
  }
  // Same shape, other layout: the elements would not correspond.
  EXPECT_THROW(layer.backward(Tensor::zeros({2, 3, 4, 5}, Layout::channels_last)), std::invalid_argument);
  EXPECT_THROW(layer.forward(Tensor()), std::invalid_argument);
}

}  // namespace
}  // namespace bnorm
