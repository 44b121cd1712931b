// BatchNorm driven only through the Layer interface, as a network does: finite-difference
// gradients in train and eval mode for BatchNorm1d/2d and both layouts, eval output against the
// formula, names and roles, accumulation of parameter gradients, compute_input_grad.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "bnorm/layers/batchnorm.hpp"
#include "bnorm/layers/sequential.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

using testing::random_tensor;

// gamma around 1, beta around 0, running mean around 0 and variance in [0.5, 1.5).
void randomize_state(Layer& layer, Rng& rng) {
  for (ParameterRef& p : layer.parameters())
    for (std::int64_t i = 0; i < p.value->numel(); ++i)
      p.value->data_f32()[i] = static_cast<float>((p.name == "weight" ? 1.0 : 0.0) + 0.3 * rng.normal());
  for (BufferRef& b : layer.buffers())
    if (b.tensor)
      for (std::int64_t i = 0; i < b.tensor->numel(); ++i)
        b.tensor->data_f32()[i] = static_cast<float>(b.name == "running_var" ? 0.5 + rng.uniform() : 0.3 * rng.normal());
}

struct Case {
  const char* name;
  std::unique_ptr<Layer> (*make)();
  Shape shape;
  Layout layout;
};

const Case cases[] = {
    {"BatchNorm1d (N, C)", []() -> std::unique_ptr<Layer> { return std::make_unique<BatchNorm1d>(BatchNormOptions{.num_features = 5}); },
     {6, 5}, Layout::channels_first},
    {"BatchNorm1d (N, C, L)", []() -> std::unique_ptr<Layer> { return std::make_unique<BatchNorm1d>(BatchNormOptions{.num_features = 3}); },
     {4, 3, 5}, Layout::channels_first},
    {"BatchNorm2d nchw", []() -> std::unique_ptr<Layer> { return std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = 3}); },
     {3, 3, 2, 3}, Layout::channels_first},
    {"BatchNorm2d nhwc", []() -> std::unique_ptr<Layer> {
       return std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = 4, .layout = Layout::channels_last});
     },
     {2, 4, 3, 2}, Layout::channels_last},
    {"BatchNorm2d no affine", []() -> std::unique_ptr<Layer> {
       return std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = 2, .affine = false});
     },
     {3, 2, 2, 2}, Layout::channels_first},
};

TEST(BatchNormAsLayer, GradientsMatchFiniteDifferencesInTrainAndEval) {
  Rng rng(1);
  for (const Case& c : cases) {
    for (bool training : {true, false}) {
      SCOPED_TRACE(std::string(c.name) + (training ? " train" : " eval"));
      std::unique_ptr<Layer> layer = c.make();
      randomize_state(*layer, rng);
      layer->train(training);
      testing::expect_gradients_match(*layer, random_tensor(c.shape, c.layout, rng));
    }
  }
}

TEST(BatchNormAsLayer, WithoutRunningStatisticsEvalUsesTheBatch) {
  Rng rng(2);
  auto layer = std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = 3, .track_running_stats = false});
  EXPECT_TRUE(layer->buffers().empty());
  const Tensor x = random_tensor({4, 3, 2, 2}, Layout::channels_first, rng);
  const Tensor y_train = testing::copy_of(layer->forward(x));
  layer->eval();
  const Tensor y_eval = layer->forward(x);
  for (std::int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(y_train.data_f32()[i], y_eval.data_f32()[i]) << i;
  testing::expect_gradients_match(*layer, x);
}

TEST(BatchNormAsLayer, EvalOutputIsTheAffineMapOfTheRunningStatistics) {
  Rng rng(3);
  BatchNorm2d bn({.num_features = 3, .eps = 1e-3});
  Layer& layer = bn;
  randomize_state(layer, rng);
  layer.eval();
  const Tensor x = random_tensor({2, 3, 2, 2}, Layout::channels_first, rng);
  const Tensor y = layer.forward(x);
  for (std::int64_t n = 0; n < 2; ++n)
    for (std::int64_t c = 0; c < 3; ++c)
      for (std::int64_t s = 0; s < 4; ++s) {
        const std::int64_t i = (n * 3 + c) * 4 + s;
        const double expected = (x.data_f32()[i] - bn.running_mean().data_f32()[c]) /
                                    std::sqrt(bn.running_var().data_f32()[c] + 1e-3) * bn.weight().data_f32()[c] +
                                bn.bias().data_f32()[c];
        EXPECT_NEAR(y.data_f32()[i], expected, 1e-5) << i;
      }
  EXPECT_EQ(bn.num_batches_tracked(), 0) << "an eval forward counted a batch";
}

TEST(BatchNormAsLayer, NamesRolesAndAccumulation) {
  BatchNorm2d bn({.num_features = 3});
  Layer& layer = bn;
  EXPECT_EQ(layer.kind(), "bn");
  const std::vector<ParameterRef> params = layer.parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "weight");
  EXPECT_EQ(params[1].name, "bias");
  EXPECT_EQ(params[0].role, ParameterRole::norm);
  EXPECT_EQ(params[1].role, ParameterRole::norm);
  const std::vector<BufferRef> buffers = layer.buffers();
  ASSERT_EQ(buffers.size(), 3u);
  EXPECT_EQ(buffers[2].name, "num_batches_tracked");
  ASSERT_NE(buffers[2].count, nullptr);
  EXPECT_EQ(buffers[2].tensor, nullptr);

  Rng rng(4);
  const Tensor x = random_tensor({4, 3, 2, 2}, Layout::channels_first, rng);
  const Tensor dy = random_tensor(x.shape(), x.layout(), rng);
  layer.zero_grad();
  layer.forward(x);
  layer.backward(dy);
  EXPECT_EQ(*buffers[2].count, 1);
  const Tensor once = testing::copy_of(*params[0].grad);
  layer.forward(x);
  layer.set_compute_input_grad(false);
  EXPECT_FALSE(layer.backward(dy).defined());
  for (std::int64_t c = 0; c < 3; ++c)
    EXPECT_NEAR(params[0].grad->data_f32()[c], 2 * once.data_f32()[c], 1e-5) << "gradients add up (+=)";
  layer.zero_grad();
  for (std::int64_t c = 0; c < 3; ++c) EXPECT_EQ(params[0].grad->data_f32()[c], 0.0f);
}

TEST(BatchNormAsLayer, InsideSequential) {
  Sequential net;
  net.add(std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = 3}));
  EXPECT_EQ(net.parameters().at(0).name, "bn1.weight");
  EXPECT_EQ(net.buffers().at(2).name, "bn1.num_batches_tracked");
  EXPECT_THROW(net.forward(Tensor::zeros({2, 3, 2, 2}, Layout::channels_last)), std::invalid_argument);
  Rng rng(5);
  testing::expect_gradients_match(net, random_tensor({3, 3, 2, 2}, Layout::channels_first, rng));
}

}  // namespace
}  // namespace bnorm
