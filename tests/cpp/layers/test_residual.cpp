// Residual: y = body(x) + shortcut(x) with an identity and with a BatchNorm ("projection")
// shortcut, the sum of both paths' dx, prefixed names, propagation of modes, and shape errors.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "bnorm/layers/activation.hpp"
#include "bnorm/layers/batchnorm.hpp"
#include "bnorm/layers/dropout.hpp"
#include "bnorm/layers/flatten.hpp"
#include "bnorm/layers/residual.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

using testing::random_tensor;

std::unique_ptr<Layer> bn2d(std::int64_t c, Layout layout = Layout::channels_first) {
  return std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = c, .layout = layout});
}

// bn + relu + bn, the shape of a ResNet basic block without its convolutions.
Sequential basic_body(std::int64_t c, Layout layout = Layout::channels_first) {
  Sequential body;
  body.add(bn2d(c, layout));
  body.add(std::make_unique<ActivationLayer>(Activation::relu));
  body.add(bn2d(c, layout));
  return body;
}

Sequential bn_shortcut(std::int64_t c, Layout layout = Layout::channels_first) {
  Sequential shortcut;
  shortcut.add(bn2d(c, layout));
  return shortcut;
}

// gamma around 1, beta around 0, and non-trivial running statistics.
void randomize_state(Layer& layer, Rng& rng) {
  for (ParameterRef& p : layer.parameters())
    for (std::int64_t i = 0; i < p.value->numel(); ++i)
      p.value->data_f32()[i] = static_cast<float>((p.name.ends_with("weight") ? 1.0 : 0.0) + 0.3 * rng.normal());
  for (BufferRef& b : layer.buffers())
    if (b.tensor)
      for (std::int64_t i = 0; i < b.tensor->numel(); ++i)
        b.tensor->data_f32()[i] = static_cast<float>(b.name.ends_with("running_var") ? 0.5 + rng.uniform() : 0.3 * rng.normal());
}

std::string message_of(auto&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no std::invalid_argument";
  return {};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Residual, IdentityShortcutAddsTheInput) {
  Rng rng(1);
  Residual block(basic_body(3));
  const Tensor x = random_tensor({4, 3, 3, 3}, Layout::channels_first, rng);
  const Tensor y = block.forward(x);
  const Tensor from_body = block.body().forward(x);
  for (std::int64_t i = 0; i < y.numel(); ++i)
    ASSERT_EQ(y.data_f32()[i], from_body.data_f32()[i] + x.data_f32()[i]) << i;
}

TEST(Residual, BackwardSumsBothPaths) {
  // Body and shortcut both the identity (Dropout with p = 0): y = 2x, dx = 2 dy exactly.
  Sequential body;
  body.add(std::make_unique<Dropout>(DropoutOptions{.p = 0.0}));
  Residual block(std::move(body));
  Rng rng(2);
  const Tensor x = random_tensor({2, 5}, Layout::channels_first, rng);
  const Tensor dy = random_tensor({2, 5}, Layout::channels_first, rng);
  const Tensor y = block.forward(x);
  const Tensor dx = block.backward(dy);
  for (std::int64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(y.data_f32()[i], 2 * x.data_f32()[i]);
    EXPECT_EQ(dx.data_f32()[i], 2 * dy.data_f32()[i]);
  }
  // Neither the input nor dy was overwritten, although both paths returned them as they were.
  EXPECT_NE(y.data_f32(), x.data_f32());
  EXPECT_NE(dx.data_f32(), dy.data_f32());
}

TEST(Residual, GradientsMatchFiniteDifferences) {
  Rng rng(3);
  for (Layout layout : {Layout::channels_first, Layout::channels_last}) {
    const Tensor x = random_tensor({4, 3, 2, 3}, layout, rng);
    {
      SCOPED_TRACE(std::string("identity shortcut, train, ") + to_string(layout));
      Residual block(basic_body(3, layout));
      randomize_state(block, rng);
      testing::expect_gradients_match(block, x);
    }
    {
      SCOPED_TRACE(std::string("bn shortcut, train, ") + to_string(layout));
      Residual block(basic_body(3, layout), bn_shortcut(3, layout));
      randomize_state(block, rng);
      testing::expect_gradients_match(block, x);
    }
    {
      SCOPED_TRACE(std::string("bn shortcut, eval, ") + to_string(layout));
      Residual block(basic_body(3, layout), bn_shortcut(3, layout));
      randomize_state(block, rng);
      block.eval();
      testing::expect_gradients_match(block, x);
    }
  }
}

TEST(Residual, PrefixesNamesAndNests) {
  Residual block(basic_body(2), bn_shortcut(2));
  std::vector<std::string> params;
  for (const ParameterRef& p : block.parameters()) params.push_back(p.name);
  EXPECT_EQ(params, (std::vector<std::string>{"body.bn1.weight", "body.bn1.bias", "body.bn2.weight",
                                              "body.bn2.bias", "shortcut.bn1.weight", "shortcut.bn1.bias"}));
  std::vector<std::string> buffers;
  for (const BufferRef& b : block.buffers()) buffers.push_back(b.name);
  ASSERT_EQ(buffers.size(), 9u);
  EXPECT_EQ(buffers[0], "body.bn1.running_mean");
  EXPECT_EQ(buffers[8], "shortcut.bn1.num_batches_tracked");

  Sequential net;
  net.add(std::make_unique<Residual>(basic_body(2)));
  net.add(std::make_unique<ActivationLayer>(Activation::relu));
  EXPECT_EQ(net.name_at(0), "residual1");
  EXPECT_EQ(net.parameters().at(0).name, "residual1.body.bn1.weight");
  EXPECT_EQ(net.parameter_count(), 8);
}

TEST(Residual, PropagatesModes) {
  Sequential body = basic_body(2);
  body.eval();
  Residual block(std::move(body), bn_shortcut(2));
  EXPECT_TRUE(block.body().at(0).is_training()) << "the block's mode is pushed at construction";
  block.eval();
  EXPECT_FALSE(block.body().at(2).is_training());
  EXPECT_FALSE(block.shortcut().at(0).is_training());
  block.train();
  EXPECT_TRUE(block.shortcut().at(0).is_training());

  block.set_compute_input_grad(false);
  EXPECT_FALSE(block.body().at(0).compute_input_grad());
  EXPECT_FALSE(block.shortcut().at(0).compute_input_grad());
  EXPECT_TRUE(block.body().at(1).compute_input_grad());
  Rng rng(4);
  const Tensor x = random_tensor({3, 2, 2, 2}, Layout::channels_first, rng);
  block.zero_grad();
  block.forward(x);
  EXPECT_FALSE(block.backward(random_tensor(x.shape(), x.layout(), rng)).defined());
  for (const ParameterRef& p : block.parameters()) {
    double norm = 0;
    for (std::int64_t i = 0; i < p.grad->numel(); ++i) norm += std::abs(p.grad->data_f32()[i]);
    EXPECT_GT(norm, 0.0) << p.name;
  }
}

TEST(Residual, ShapeErrorsNameBothPaths) {
  Sequential body;
  body.add(std::make_unique<Flatten>());
  Residual block(std::move(body));
  const std::string mismatch = message_of([&] { block.output_shape({2, 3, 2, 2}); });
  EXPECT_TRUE(contains(mismatch, "(2, 3, 2, 2)")) << mismatch;
  EXPECT_TRUE(contains(mismatch, "(2, 12)")) << mismatch;
  Rng rng(5);
  const std::string in_forward = message_of([&] { block.forward(random_tensor({2, 3, 2, 2}, Layout::channels_first, rng)); });
  EXPECT_TRUE(contains(in_forward, "(2, 12)")) << in_forward;

  Residual wrong_channels(basic_body(4), bn_shortcut(4));
  const std::string rejected = message_of([&] { wrong_channels.output_shape({2, 3, 5, 5}); });
  EXPECT_TRUE(contains(rejected, "body")) << rejected;
  EXPECT_TRUE(contains(rejected, "(2, 3, 5, 5)")) << rejected;
  EXPECT_TRUE(contains(rejected, "'bn1'")) << rejected;
  EXPECT_TRUE(Residual(basic_body(4)).output_shape({2, 4, 5, 5}) == Shape({2, 4, 5, 5}));
}

TEST(Residual, DescribeAndOrderErrors) {
  Residual block(basic_body(2));
  const std::string text = block.describe();
  EXPECT_TRUE(text.starts_with("residual(\n  body: sequential(\n    bn1: BatchNorm2d(2")) << text;
  EXPECT_TRUE(text.ends_with("\n  shortcut: identity\n)")) << text;
  EXPECT_THROW(block.backward(Tensor::zeros({2, 2, 1, 1})), std::logic_error);
}

}  // namespace
}  // namespace bnorm
