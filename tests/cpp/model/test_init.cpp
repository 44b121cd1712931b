// Weight initialization: fans, the empirical moments of each scheme against its formula, the
// automatic choice per layer, bias and BN initialization, and seeded determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "bnorm/model/init.hpp"
#include "bnorm/model/model.hpp"

namespace bnorm {
namespace {

struct Moments {
  double mean = 0, stddev = 0, max_abs = 0;
};

Moments moments(const Tensor& t) {
  const float* p = t.data_f32();
  double sum = 0, sum2 = 0, max_abs = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    sum += p[i];
    sum2 += static_cast<double>(p[i]) * p[i];
    max_abs = std::max(max_abs, std::abs(static_cast<double>(p[i])));
  }
  const double n = static_cast<double>(t.numel());
  const double mean = sum / n;
  return {mean, std::sqrt(sum2 / n - mean * mean), max_abs};
}

TEST(Init, Fans) {
  Fans f = compute_fans({10, 20});
  EXPECT_EQ(f.fan_in, 20);
  EXPECT_EQ(f.fan_out, 10);
  f = compute_fans({64, 16, 3, 3});  // a conv with 32 input channels in 2 groups
  EXPECT_EQ(f.fan_in, 16 * 9);
  EXPECT_EQ(f.fan_out, 64 * 9);
  EXPECT_THROW(compute_fans({7}), std::invalid_argument);
}

TEST(Init, Gains) {
  EXPECT_DOUBLE_EQ(activation_gain(Activation::relu), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(activation_gain(Activation::sigmoid), 1.0);
  EXPECT_DOUBLE_EQ(activation_gain(Activation::tanh), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(activation_gain(std::nullopt), 1.0);
}

// 128 * 64 * 3 * 3 = 73,728 samples: the sample std has a relative error of about
// 1/sqrt(2n) = 0.26%, so 2% is a real test and still never flaky.
TEST(Init, EmpiricalStdMatchesFormulas) {
  Rng rng(42);
  Tensor w = Tensor::empty({128, 64, 3, 3});
  const double fan_in = 64 * 9, fan_out = 128 * 9;
  const double gain = std::sqrt(2.0);

  init_kaiming_normal(w, rng, gain);
  Moments m = moments(w);
  EXPECT_NEAR(m.stddev, gain / std::sqrt(fan_in), 0.02 * gain / std::sqrt(fan_in));
  EXPECT_NEAR(m.mean, 0.0, 0.02 * m.stddev);

  init_kaiming_uniform(w, rng, gain);
  m = moments(w);
  const double kaiming_bound = gain * std::sqrt(3.0 / fan_in);
  EXPECT_LE(m.max_abs, kaiming_bound);
  EXPECT_GT(m.max_abs, 0.99 * kaiming_bound);
  EXPECT_NEAR(m.stddev, gain / std::sqrt(fan_in), 0.02 * gain / std::sqrt(fan_in));

  init_xavier_normal(w, rng, 1.0);
  m = moments(w);
  const double xavier_std = std::sqrt(2.0 / (fan_in + fan_out));
  EXPECT_NEAR(m.stddev, xavier_std, 0.02 * xavier_std);

  init_xavier_uniform(w, rng, 5.0 / 3.0);
  m = moments(w);
  const double xavier_bound = 5.0 / 3.0 * std::sqrt(6.0 / (fan_in + fan_out));
  EXPECT_LE(m.max_abs, xavier_bound);
  EXPECT_NEAR(m.stddev, xavier_bound / std::sqrt(3.0), 0.02 * xavier_bound / std::sqrt(3.0));

  init_normal(w, rng, 0.5, 0.01);
  m = moments(w);
  EXPECT_NEAR(m.mean, 0.5, 0.001);
  EXPECT_NEAR(m.stddev, 0.01, 0.0002);
}

TEST(Init, SameSeedSameValues) {
  Tensor a = Tensor::empty({50, 40}), b = Tensor::empty({50, 40});
  Rng r1(9), r2(9), r3(10);
  init_kaiming_normal(a, r1, 1.0);
  init_kaiming_normal(b, r2, 1.0);
  EXPECT_EQ(std::memcmp(a.data_f32(), b.data_f32(), a.nbytes()), 0);
  init_kaiming_normal(b, r3, 1.0);
  EXPECT_NE(std::memcmp(a.data_f32(), b.data_f32(), a.nbytes()), 0);
}

std::map<std::string, Tensor*> by_name(Layer& net) {
  std::map<std::string, Tensor*> out;
  for (const ParameterRef& p : net.parameters()) out[p.name] = p.value;
  return out;
}

TEST(Init, AutomaticFollowsTheActivation) {
  Model m = Model::build("linear(256) bn relu linear(256) sigmoid linear(256) tanh linear(10)", {1024},
                         {.seed = 3});
  auto p = by_name(m.net);
  const double tol = 0.04;  // >= 2,560 samples per tensor: 1/sqrt(2n) <= 1.4%
  const double relu_std = std::sqrt(2.0 / 1024);
  EXPECT_NEAR(moments(*p.at("linear1.weight")).stddev, relu_std, tol * relu_std);
  const double sigmoid_std = std::sqrt(2.0 / 512);
  EXPECT_NEAR(moments(*p.at("linear2.weight")).stddev, sigmoid_std, tol * sigmoid_std);
  const double tanh_std = 5.0 / 3.0 * std::sqrt(2.0 / 512);
  EXPECT_NEAR(moments(*p.at("linear3.weight")).stddev, tanh_std, tol * tanh_std);
  const double last_std = std::sqrt(2.0 / 266);
  EXPECT_NEAR(moments(*p.at("linear4.weight")).stddev, last_std, 0.1 * last_std);  // 2,560 samples
  // Zero biases by default, gamma 1 and beta 0.
  EXPECT_EQ(moments(*p.at("linear2.bias")).max_abs, 0.0);
  EXPECT_EQ(moments(*p.at("bn1.weight")).mean, 1.0);
  EXPECT_EQ(moments(*p.at("bn1.weight")).stddev, 0.0);
  EXPECT_EQ(moments(*p.at("bn1.bias")).max_abs, 0.0);
}

TEST(Init, ForcedSchemeGainAndPytorchBias) {
  Model m = Model::build("conv3x3(64) relu conv3x3(64)", {32, 6, 6},
                         {.init = {.scheme = InitScheme::gaussian, .sigma = 0.05, .bias = BiasInit::pytorch_uniform}});
  auto p = by_name(m.net);
  EXPECT_NEAR(moments(*p.at("conv1.weight")).stddev, 0.05, 0.002);
  const double bound = 1.0 / std::sqrt(32.0 * 9);
  const Moments b = moments(*p.at("conv1.bias"));
  EXPECT_LE(b.max_abs, bound);
  EXPECT_GT(b.max_abs, 0.5 * bound);
  Model k = Model::build("conv3x3(64) relu", {32, 6, 6},
                         {.init = {.scheme = InitScheme::kaiming_uniform, .gain = 1.0}});
  EXPECT_LE(moments(*by_name(k.net).at("conv1.weight")).max_abs, std::sqrt(3.0 / (32 * 9)));
  EXPECT_GT(moments(*by_name(k.net).at("conv1.weight")).max_abs, 0.95 * std::sqrt(3.0 / (32 * 9)));
}

TEST(Init, InitializeResetsBatchNorm) {
  Model m = Model::build("linear(4) bn", {3});
  auto p = by_name(m.net);
  p.at("bn1.weight")->data_f32()[0] = 7.0f;
  p.at("bn1.bias")->data_f32()[1] = -2.0f;
  Rng rng(1);
  initialize(m.net, m.notes, {}, rng);
  EXPECT_EQ(p.at("bn1.weight")->data_f32()[0], 1.0f);
  EXPECT_EQ(p.at("bn1.bias")->data_f32()[1], 0.0f);
}

TEST(Init, SeededModelsAreIdentical) {
  const std::string spec = builtin_spec("resnet-mini");
  Model a = Model::build(spec, {1, 12, 12}, {.seed = 11});
  Model b = Model::build(spec, {1, 12, 12}, {.seed = 11});
  Model c = Model::build(spec, {1, 12, 12}, {.seed = 12});
  const auto pa = a.net.parameters(), pb = b.net.parameters(), pc = c.net.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  bool any_difference = false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].name, pb[i].name);
    EXPECT_EQ(std::memcmp(pa[i].value->data_f32(), pb[i].value->data_f32(), pa[i].value->nbytes()), 0) << pa[i].name;
    if (pa[i].role == ParameterRole::weight)
      any_difference |= std::memcmp(pa[i].value->data_f32(), pc[i].value->data_f32(), pa[i].value->nbytes()) != 0;
  }
  EXPECT_TRUE(any_difference);
}

TEST(Init, SchemeNames) {
  for (InitScheme s : {InitScheme::automatic, InitScheme::kaiming_normal, InitScheme::kaiming_uniform,
                       InitScheme::xavier_normal, InitScheme::xavier_uniform, InitScheme::gaussian})
    EXPECT_EQ(parse_init_scheme(to_string(s)), s);
  try {
    parse_init_scheme("he");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected one of auto, kaiming-normal"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bnorm
