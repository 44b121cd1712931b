// Sequential: generated names, name checks, prefixed parameter and buffer names, propagation of
// train/eval and compute_input_grad, shape chaining and its error context, and gradients by
// finite differences. Built from BatchNorm, activations, Flatten and Dropout.
#include <gtest/gtest.h>

#include <memory>

#include "bnorm/layers/activation.hpp"
#include "bnorm/layers/batchnorm.hpp"
#include "bnorm/layers/dropout.hpp"
#include "bnorm/layers/flatten.hpp"
#include "bnorm/layers/linear.hpp"
#include "bnorm/layers/sequential.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

using testing::random_tensor;

std::unique_ptr<Layer> bn2d(std::int64_t c) { return std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = c}); }
std::unique_ptr<Layer> bn1d(std::int64_t c) { return std::make_unique<BatchNorm1d>(BatchNormOptions{.num_features = c}); }
std::unique_ptr<Layer> act(Activation a) { return std::make_unique<ActivationLayer>(a); }

std::vector<std::string> names_of(const auto& refs) {
  std::vector<std::string> names;
  for (const auto& r : refs) names.push_back(r.name);
  return names;
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

// Moves the mean and variance away from 0 and 1 and gamma/beta away from 1/0, so that eval mode
// and the affine part are exercised with values that tell mistakes apart.
void randomize_batchnorm_state(Layer& layer, Rng& rng) {
  for (ParameterRef& p : layer.parameters())
    for (std::int64_t i = 0; i < p.value->numel(); ++i)
      p.value->data_f32()[i] = static_cast<float>((p.role == ParameterRole::norm && contains(p.name, "weight") ? 1.0 : 0.0) +
                                                  0.3 * rng.normal());
  for (BufferRef& b : layer.buffers()) {
    if (!b.tensor) continue;
    for (std::int64_t i = 0; i < b.tensor->numel(); ++i)
      b.tensor->data_f32()[i] = contains(b.name, "running_var") ? static_cast<float>(0.5 + rng.uniform())
                                                                 : static_cast<float>(0.5 * rng.normal());
  }
}

TEST(Sequential, GeneratesNamesPerKind) {
  Sequential net;
  net.add(bn2d(3));
  net.add(act(Activation::relu));
  net.add(bn2d(3));
  net.add(act(Activation::relu));
  net.add(std::make_unique<Dropout>(DropoutOptions{.p = 0.1}));
  net.add(std::make_unique<Flatten>(), "head");
  net.add(act(Activation::tanh), "bn3");  // a hand-made name that an automatic one would take
  net.add(bn1d(12));
  const std::vector<std::string> expected{"bn1", "relu1", "bn2", "relu2", "dropout1", "head", "bn3", "bn4"};
  ASSERT_EQ(net.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(net.name_at(i), expected[i]) << i;
  EXPECT_EQ(net.at(5).kind(), "flatten");
}

TEST(Sequential, RejectsBadNames) {
  Sequential net;
  net.add(bn2d(3));
  const std::string duplicate = message_of([&] { net.add(act(Activation::relu), "bn1"); });
  EXPECT_TRUE(contains(duplicate, "'bn1'")) << duplicate;
  EXPECT_TRUE(contains(message_of([&] { net.add(act(Activation::relu), "a.b"); }), "'a.b'"));
  EXPECT_THROW(net.add(nullptr), std::invalid_argument);
  EXPECT_EQ(net.size(), 1u) << "a rejected layer was kept";
  // The rejected ones did not use up a number.
  net.add(act(Activation::relu));
  EXPECT_EQ(net.name_at(1), "relu1");
}

TEST(Sequential, PrefixesParameterAndBufferNames) {
  auto block = std::make_unique<Sequential>();
  block->add(bn2d(4));
  block->add(act(Activation::relu));
  Sequential net;
  net.add(bn2d(4));
  net.add(std::move(block));
  net.add(std::make_unique<Dropout>(DropoutOptions{}));

  const std::vector<ParameterRef> params = net.parameters();
  EXPECT_EQ(names_of(params),
            (std::vector<std::string>{"bn1.weight", "bn1.bias", "sequential1.bn1.weight", "sequential1.bn1.bias"}));
  for (const ParameterRef& p : params) EXPECT_EQ(p.role, ParameterRole::norm) << p.name;
  auto& bn = dynamic_cast<BatchNorm&>(net.at(0));
  EXPECT_EQ(params[0].value, &bn.weight());
  EXPECT_EQ(net.parameter_count(), 16);

  const std::vector<BufferRef> buffers = net.buffers();
  EXPECT_EQ(names_of(buffers),
            (std::vector<std::string>{"bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                                      "sequential1.bn1.running_mean", "sequential1.bn1.running_var",
                                      "sequential1.bn1.num_batches_tracked", "dropout1.step"}));
  EXPECT_NE(buffers.back().count, nullptr);
  EXPECT_EQ(buffers[0].tensor, &bn.running_mean());
}

TEST(Sequential, PropagatesTrainEvalAndInputGrad) {
  auto block = std::make_unique<Sequential>();
  block->add(bn2d(3));
  block->add(act(Activation::tanh));
  Sequential net;
  net.add(std::move(block));
  net.add(bn2d(3));
  auto& inner = dynamic_cast<Sequential&>(net.at(0));

  net.eval();
  EXPECT_FALSE(inner.at(0).is_training());
  EXPECT_FALSE(inner.at(1).is_training());
  EXPECT_FALSE(net.at(1).is_training());
  net.add(act(Activation::relu));
  EXPECT_FALSE(net.at(2).is_training()) << "a layer added to an eval container trains";
  net.train();
  EXPECT_TRUE(inner.at(0).is_training());
  EXPECT_TRUE(net.at(2).is_training());

  net.set_compute_input_grad(false);
  EXPECT_FALSE(inner.compute_input_grad());
  EXPECT_FALSE(inner.at(0).compute_input_grad());
  EXPECT_TRUE(inner.at(1).compute_input_grad());
  EXPECT_TRUE(net.at(1).compute_input_grad());
  auto late = act(Activation::sigmoid);
  late->set_compute_input_grad(false);
  EXPECT_TRUE(net.add(std::move(late)).compute_input_grad()) << "an inner layer skips dx";

  // Without dx the backward still accumulates every parameter gradient.
  Rng rng(1);
  const Tensor x = random_tensor({4, 3, 2, 2}, Layout::channels_first, rng);
  net.zero_grad();
  net.forward(x);
  EXPECT_FALSE(net.backward(random_tensor({4, 3, 2, 2}, Layout::channels_first, rng)).defined());
  for (const ParameterRef& p : net.parameters()) {
    double norm = 0;
    for (std::int64_t i = 0; i < p.grad->numel(); ++i) norm += std::abs(p.grad->data_f32()[i]);
    EXPECT_GT(norm, 0.0) << p.name;
  }
}

// With compute_input_grad off, the parameter-free layers in front of the first learned layer
// are skipped and that layer computes no dx (Flatten before Linear in mlp-paper), yet every
// parameter gradient equals the one computed with dx.
TEST(Sequential, SkipsParameterFreeLeadingLayersWithoutInputGrad) {
  auto make = [] {
    auto net = std::make_unique<Sequential>();
    net->add(std::make_unique<Flatten>());
    net->add(act(Activation::tanh));
    net->add(std::make_unique<Linear>(LinearOptions{.in_features = 12, .out_features = 5}));
    net->add(act(Activation::sigmoid));
    net->add(std::make_unique<Linear>(LinearOptions{.in_features = 5, .out_features = 3}));
    Rng init(3);
    for (const ParameterRef& p : net->parameters())
      for (std::int64_t i = 0; i < p.value->numel(); ++i) p.value->data_f32()[i] = static_cast<float>(init.normal());
    return net;
  };
  auto with_dx = make(), without_dx = make();
  without_dx->set_compute_input_grad(false);
  EXPECT_FALSE(without_dx->at(0).compute_input_grad());
  EXPECT_FALSE(without_dx->at(1).compute_input_grad());
  EXPECT_FALSE(without_dx->at(2).compute_input_grad());
  EXPECT_TRUE(without_dx->at(3).compute_input_grad());
  EXPECT_TRUE(without_dx->at(4).compute_input_grad());

  Rng rng(1);
  const Tensor x = random_tensor({4, 3, 2, 2}, Layout::channels_first, rng);
  const Tensor dy = random_tensor({4, 3}, Layout::channels_first, rng);
  with_dx->zero_grad();
  without_dx->zero_grad();
  with_dx->forward(x);
  without_dx->forward(x);
  EXPECT_TRUE(with_dx->backward(dy).defined());
  EXPECT_FALSE(without_dx->backward(dy).defined());
  const auto a = with_dx->parameters(), b = without_dx->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t k = 0; k < a.size(); ++k)
    for (std::int64_t i = 0; i < a[k].grad->numel(); ++i)
      ASSERT_EQ(a[k].grad->data_f32()[i], b[k].grad->data_f32()[i]) << a[k].name << " element " << i;

  without_dx->set_compute_input_grad(true);  // and back
  EXPECT_TRUE(without_dx->at(0).compute_input_grad());
  without_dx->forward(x);
  EXPECT_TRUE(without_dx->backward(dy).defined());
}

TEST(Sequential, ChainsOutputShapesAndNamesTheLayerThatRejects) {
  Sequential net;
  net.add(bn2d(3));
  net.add(std::make_unique<Flatten>());
  net.add(bn1d(12));
  EXPECT_TRUE(net.output_shape({2, 3, 2, 2}) == Shape({2, 12}));

  const std::string late = message_of([&] { net.output_shape({2, 3, 2, 3}); });
  EXPECT_TRUE(contains(late, "layer 2 'bn2'")) << late;
  EXPECT_TRUE(contains(late, "(2, 18)")) << late;
  const std::string early = message_of([&] { net.output_shape({2, 4, 2, 2}); });
  EXPECT_TRUE(contains(early, "layer 0 'bn1'")) << early;
  EXPECT_TRUE(contains(early, "(2, 4, 2, 2)")) << early;
  // forward gives the same context.
  Rng rng(2);
  const std::string in_forward = message_of([&] { net.forward(random_tensor({2, 3, 2, 3}, Layout::channels_first, rng)); });
  EXPECT_TRUE(contains(in_forward, "layer 2 'bn2'")) << in_forward;
  EXPECT_TRUE(contains(in_forward, "(2, 18)")) << in_forward;

  // Nested: both levels are named.
  Sequential outer;
  outer.add(std::make_unique<Sequential>(std::move(net)), "features");
  const std::string nested = message_of([&] { outer.output_shape({2, 3, 2, 3}); });
  EXPECT_TRUE(contains(nested, "layer 0 'features'")) << nested;
  EXPECT_TRUE(contains(nested, "layer 2 'bn2'")) << nested;
}

TEST(Sequential, ForwardEqualsTheLayersInOrder) {
  Rng rng(3);
  Sequential net;
  net.add(bn2d(3));
  net.add(act(Activation::sigmoid));
  net.add(std::make_unique<Flatten>());
  randomize_batchnorm_state(net.at(0), rng);
  BatchNorm2d bn({.num_features = 3});
  for (std::size_t k = 0; k < 2; ++k)
    std::copy_n(net.at(0).parameters()[k].value->data_f32(), 3, bn.parameters()[k].value->data_f32());
  ActivationLayer sigmoid(Activation::sigmoid);
  Flatten flatten;

  const Tensor x = random_tensor({4, 3, 2, 3}, Layout::channels_first, rng);
  const Tensor y = net.forward(x);
  const Tensor expected = flatten.forward(sigmoid.forward(bn.forward(x)));
  ASSERT_TRUE(y.shape() == Shape({4, 18}));
  for (std::int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y.data_f32()[i], expected.data_f32()[i]) << i;
}

TEST(Sequential, EmptyIsTheIdentity) {
  Sequential net;
  EXPECT_THROW(net.backward(Tensor::zeros({2, 3})), std::logic_error);
  EXPECT_TRUE(net.output_shape({2, 3}) == Shape({2, 3}));
  const Tensor x = Tensor::full({2, 3}, 1.5f);
  EXPECT_EQ(net.forward(x).data_f32(), x.data_f32());
  const Tensor dy = Tensor::full({2, 3}, 2.0f);
  EXPECT_EQ(net.backward(dy).data_f32(), dy.data_f32());
  EXPECT_EQ(net.describe(), "sequential()");
  EXPECT_TRUE(net.parameters().empty());
}

TEST(Sequential, BackwardBeforeForwardNamesTheLayer) {
  Sequential net;
  net.add(bn2d(3));
  try {
    net.backward(Tensor::zeros({2, 3, 2, 2}));
    FAIL() << "backward before forward was accepted";
  } catch (const std::logic_error& e) {
    EXPECT_TRUE(contains(e.what(), "layer 0 'bn1'")) << e.what();
  }
}

TEST(Sequential, DescribeListsTheLayers) {
  auto block = std::make_unique<Sequential>();
  block->add(act(Activation::tanh));
  Sequential net;
  net.add(bn2d(3));
  net.add(std::move(block));
  const std::string text = net.describe();
  EXPECT_EQ(text, "sequential(\n  bn1: " + net.at(0).describe() +
                      "\n  sequential1: sequential(\n    tanh1: tanh\n  )\n)");
}

TEST(Sequential, GradientsMatchFiniteDifferences) {
  Rng rng(4);
  auto make = [&](bool with_dropout) {
    Sequential net;
    net.add(bn2d(3));
    net.add(act(Activation::tanh));
    net.add(bn2d(3));
    net.add(act(Activation::sigmoid));
    net.add(std::make_unique<Flatten>());
    net.add(bn1d(12));
    // Dropout draws a new mask per training forward: only in eval mode is it a function.
    if (with_dropout) net.add(std::make_unique<Dropout>(DropoutOptions{.p = 0.5}));
    randomize_batchnorm_state(net, rng);
    return net;
  };
  const Tensor x = random_tensor({5, 3, 2, 2}, Layout::channels_first, rng);
  {
    SCOPED_TRACE("train");
    Sequential net = make(false);
    testing::expect_gradients_match(net, x);
  }
  {
    SCOPED_TRACE("eval");
    Sequential net = make(true);
    net.eval();
    testing::expect_gradients_match(net, x);
  }
}

}  // namespace
}  // namespace bnorm
