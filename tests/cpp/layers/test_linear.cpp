// Linear: forward and backward against plain loops in double, finite differences, "+="
// accumulation of parameter gradients, the input-grad switch, bad options and bad inputs.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnorm/layers/linear.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

using testing::copy_of;
using testing::random_tensor;

void randomize_parameters(Layer& layer, Rng& rng) {
  for (ParameterRef& p : layer.parameters()) {
    float* v = p.value->data_f32();
    for (std::int64_t i = 0; i < p.value->numel(); ++i) v[i] = static_cast<float>(0.5 * rng.normal());
  }
}

struct LinearCase {
  std::int64_t n, in, out;
  bool bias;
};

class LinearCases : public ::testing::TestWithParam<LinearCase> {};

// y, dx, dW and db against double loops.
void expect_matches_loops(const LinearCase& c) {
  Rng rng(21);
  Linear linear({.in_features = c.in, .out_features = c.out, .bias = c.bias});
  randomize_parameters(linear, rng);
  const Tensor x = random_tensor({c.n, c.in}, Layout::channels_first, rng);
  const Tensor y = linear.forward(x);
  ASSERT_TRUE(y.shape() == (Shape{c.n, c.out})) << y.describe();
  const Tensor dy = random_tensor(y.shape(), Layout::channels_first, rng);
  const Tensor dx = linear.backward(dy);
  const float* px = x.data_f32();
  const float* pw = linear.weight().data_f32();
  const float* pdy = dy.data_f32();
  for (std::int64_t i = 0; i < c.n; ++i)
    for (std::int64_t o = 0; o < c.out; ++o) {
      double sum = c.bias ? linear.bias().data_f32()[o] : 0.0;
      for (std::int64_t k = 0; k < c.in; ++k) sum += static_cast<double>(px[i * c.in + k]) * pw[o * c.in + k];
      ASSERT_NEAR(y.data_f32()[i * c.out + o], sum, 1e-4) << linear.describe() << " y(" << i << ", " << o << ")";
    }
  for (std::int64_t i = 0; i < c.n; ++i)  // dx = dy W
    for (std::int64_t k = 0; k < c.in; ++k) {
      double sum = 0;
      for (std::int64_t o = 0; o < c.out; ++o) sum += static_cast<double>(pdy[i * c.out + o]) * pw[o * c.in + k];
      ASSERT_NEAR(dx.data_f32()[i * c.in + k], sum, 1e-4) << "dx(" << i << ", " << k << ")";
    }
  for (std::int64_t o = 0; o < c.out; ++o) {  // dW = dy^T x, db = column sums of dy
    double db = 0;
    for (std::int64_t i = 0; i < c.n; ++i) db += pdy[i * c.out + o];
    if (c.bias) {
      ASSERT_NEAR(linear.bias_grad().data_f32()[o], db, 1e-4) << "db[" << o << "]";
    }
    for (std::int64_t k = 0; k < c.in; ++k) {
      double dw = 0;
      for (std::int64_t i = 0; i < c.n; ++i) dw += static_cast<double>(pdy[i * c.out + o]) * px[i * c.in + k];
      ASSERT_NEAR(linear.weight_grad().data_f32()[o * c.in + k], dw, 1e-4) << "dW(" << o << ", " << k << ")";
    }
  }
}

TEST_P(LinearCases, ForwardAndBackwardMatchLoops) { expect_matches_loops(GetParam()); }

// Products of at least 2^18 multiply-adds are split between threads by rows of W (dx by
// examples); odd sizes so that the blocks are uneven.
TEST(Linear, ProductsSplitBetweenThreadsMatchLoops) {
  const int saved_threads = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    omp_set_num_threads(threads);
    expect_matches_loops({61, 129, 67, true});
  }
  omp_set_num_threads(saved_threads);
}

TEST_P(LinearCases, FiniteDifferences) {
  const LinearCase c = GetParam();
  Rng rng(4);
  Linear linear({.in_features = c.in, .out_features = c.out, .bias = c.bias});
  randomize_parameters(linear, rng);
  testing::expect_gradients_match(linear, random_tensor({c.n, c.in}, Layout::channels_first, rng));
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearCases,
                         ::testing::Values(LinearCase{5, 7, 3, true}, LinearCase{1, 4, 9, true},
                                           LinearCase{3, 1, 1, false}, LinearCase{17, 33, 10, false},
                                           LinearCase{2, 100, 65, true}));

TEST(Linear, ParametersAreNamedZeroAndShapedLikePyTorch) {
  Linear linear({.in_features = 4, .out_features = 3});
  const auto params = linear.parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "weight");
  EXPECT_EQ(params[0].role, ParameterRole::weight);
  EXPECT_TRUE(params[0].value->shape() == (Shape{3, 4}));
  EXPECT_EQ(params[1].name, "bias");
  EXPECT_EQ(params[1].role, ParameterRole::bias);
  EXPECT_TRUE(params[1].value->shape() == (Shape{3}));
  for (const ParameterRef& p : params)
    for (std::int64_t i = 0; i < p.value->numel(); ++i) ASSERT_EQ(p.value->data_f32()[i], 0.0f);
  EXPECT_EQ(linear.describe(), "linear(4 -> 3)");
  Linear no_bias({.in_features = 784, .out_features = 100, .bias = false});
  EXPECT_EQ(no_bias.parameters().size(), 1u);
  EXPECT_EQ(no_bias.describe(), "linear(784 -> 100, bias=false)");
  EXPECT_EQ(no_bias.kind(), "linear");
}

TEST(Linear, ParameterGradientsAccumulateAndInputGradCanBeSkipped) {
  Rng rng(9);
  Linear linear({.in_features = 6, .out_features = 4});
  randomize_parameters(linear, rng);
  const Tensor x = random_tensor({5, 6}, Layout::channels_first, rng);
  const Tensor dy = random_tensor({5, 4}, Layout::channels_first, rng);
  linear.forward(x);
  const Tensor dx = linear.backward(dy);
  EXPECT_TRUE(dx.defined());
  const Tensor once_w = copy_of(linear.weight_grad()), once_b = copy_of(linear.bias_grad());
  linear.set_compute_input_grad(false);
  EXPECT_FALSE(linear.backward(dy).defined());
  for (std::int64_t i = 0; i < once_w.numel(); ++i)
    ASSERT_NEAR(linear.weight_grad().data_f32()[i], 2 * once_w.data_f32()[i], 1e-5);
  for (std::int64_t i = 0; i < once_b.numel(); ++i)
    ASSERT_NEAR(linear.bias_grad().data_f32()[i], 2 * once_b.data_f32()[i], 1e-5);
  linear.zero_grad();
  EXPECT_EQ(linear.weight_grad().data_f32()[0], 0.0f);
  EXPECT_EQ(linear.bias_grad().data_f32()[0], 0.0f);
}

void expect_invalid(const std::function<void()>& f, std::vector<std::string> fragments) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning " << fragments[0];
  } catch (const std::invalid_argument& e) {
    for (const std::string& s : fragments) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
  }
}

TEST(Linear, RejectsBadOptionsAndInputs) {
  expect_invalid([] { Linear({.in_features = 0, .out_features = 3}); }, {"in_features", "0 -> 3"});
  expect_invalid([] { Linear({.in_features = 3, .out_features = -2}); }, {"out_features", "3 -> -2"});
  Linear linear({.in_features = 4, .out_features = 3});
  expect_invalid([&] { linear.output_shape({2, 5}); }, {"linear(4 -> 3)", "(N, 4)", "(2, 5)"});
  expect_invalid([&] { linear.output_shape({2, 4, 1, 1}); }, {"(2, 4, 1, 1)"});
  expect_invalid([&] { linear.forward(Tensor()); }, {"undefined"});
  EXPECT_THROW(linear.backward(Tensor::zeros({2, 3})), std::logic_error);  // before forward
  linear.forward(Tensor::zeros({2, 4}));
  expect_invalid([&] { linear.backward(Tensor::zeros({3, 3})); }, {"(2, 3)", "(3, 3)"});
  linear.bias() = Tensor::zeros({4});  // a loader replaced it with the wrong shape
  EXPECT_THROW(linear.forward(Tensor::zeros({2, 4})), std::logic_error);
}

}  // namespace
}  // namespace bnorm
