// The layers (BatchNorm1d/2d/3d): they must produce what the reference kernels produce for the
// same parameters, own their state correctly (saved input, gradient accumulation, zero_grad,
// frozen-statistics backward after an eval forward) and reject bad input with messages that
// print the shapes involved. Running statistics and eval semantics: test_batchnorm_running_stats.
//
// The layer runs whatever batchnorm_select picks; CTest also runs these suites with
// BNORM_IMPL=cpu_scalar and BNORM_IMPL=cpu_avx2 (see tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include "batchnorm_test_support.hpp"

namespace bnorm::test {
namespace {

struct ShapeCase {
  std::vector<std::int64_t> dims;
  Layout layout;
};
std::string shape_case_name(const ::testing::TestParamInfo<ShapeCase>& info) {
  return test_name(layer_case_text(Shape(info.param.dims), info.param.layout));
}
void PrintTo(const ShapeCase& c, std::ostream* os) { *os << layer_case_text(Shape(c.dims), c.layout); }

class LayerVsReference : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(LayerVsReference, TrainForwardBackwardAndEvalBackward) {
  const Shape shape(GetParam().dims);
  const Layout layout = GetParam().layout;
  const BatchNormProblem p = BatchNormProblem::from_shape(shape, layout);
  BNORM_REQUIRE_FORCED_IMPL_ACCEPTS(p);
  const auto C = static_cast<std::size_t>(p.channels);
  const double eps = 1e-4;
  const std::vector<float> x = random_input(p, 80);
  const std::vector<float> dy = random_uniform(x.size(), 81, -1.0f, 1.0f);
  const std::vector<float> gamma = random_uniform(C, 82, 0.5f, 1.5f);
  const std::vector<float> beta = random_uniform(C, 83, -1.0f, 1.0f);
  const BatchNormImpl& ref = reference_impl();
  std::vector<std::byte> no_workspace;

  for (bool affine : {true, false}) {
    SCOPED_TRACE(affine ? "affine" : "affine off");
    auto layer = make_layer(shape.rank(), {.num_features = p.channels, .eps = eps,
                                           .affine = affine, .layout = layout});
    EXPECT_EQ(layer->weight().defined(), affine);
    if (affine) {
      std::copy(gamma.begin(), gamma.end(), layer->weight().data_f32());
      std::copy(beta.begin(), beta.end(), layer->bias().data_f32());
    }
    const float* g = affine ? gamma.data() : nullptr;
    const float* b = affine ? beta.data() : nullptr;

    // Train forward.
    const Tensor xt = tensor_of(x, shape, layout);
    const Tensor yt = layer->forward(xt);
    EXPECT_EQ(yt.shape(), shape);
    EXPECT_EQ(yt.layout(), layout);
    std::vector<float> y(x.size()), mean(C), invstd(C), rm(C, 0.0f), rv(C, 1.0f);
    ref.forward_train({.problem = p, .eps = eps, .x = x.data(), .gamma = g, .beta = b,
                       .y = y.data(), .save_mean = mean.data(), .save_invstd = invstd.data(),
                       .running = {.mean = rm.data(), .var = rv.data(), .factor = 0.1},
                       .workspace = no_workspace});
    EXPECT_TRUE(all_close("y", values_of(yt), y, 1e-5, 1e-5));
    EXPECT_TRUE(all_close("running_mean", values_of(layer->running_mean()), rm, 1e-5, 1e-6));
    EXPECT_TRUE(all_close("running_var", values_of(layer->running_var()), rv, 1e-5, 0.0));
    EXPECT_EQ(values_of(xt), x) << "forward modified its input";

    // Batch-statistics backward; parameter gradients accumulate over two calls.
    std::vector<float> dx(x.size()), dgamma(C, 0.0f), dbeta(C, 0.0f);
    ref.backward({.problem = p, .statistics = BatchNormStatistics::batch,
                  .mask = {.dx = true, .dgamma = affine, .dbeta = affine}, .x = x.data(),
                  .dy = dy.data(), .mean = mean.data(), .invstd = invstd.data(), .gamma = g,
                  .dx = dx.data(), .dgamma = affine ? dgamma.data() : nullptr,
                  .dbeta = affine ? dbeta.data() : nullptr, .workspace = no_workspace});
    const Tensor dyt = tensor_of(dy, shape, layout);
    const double dx_scale = 1e-5 * std::max(1.0, max_abs(dx));
    EXPECT_TRUE(all_close("dx", values_of(layer->backward(dyt)), dx, 1e-5, dx_scale));
    if (affine) {
      EXPECT_TRUE(all_close("weight_grad", values_of(layer->weight_grad()), dgamma, 1e-5, 1e-5));
      EXPECT_TRUE(all_close("bias_grad", values_of(layer->bias_grad()), dbeta, 1e-5, 1e-5));
      EXPECT_TRUE(all_close("dx (second call)", values_of(layer->backward(dyt)), dx, 1e-5, dx_scale));
      std::vector<float> twice_dgamma(C), twice_dbeta(C);
      for (std::size_t c = 0; c < C; ++c) twice_dgamma[c] = 2 * dgamma[c], twice_dbeta[c] = 2 * dbeta[c];
      EXPECT_TRUE(all_close("weight_grad (accumulated)", values_of(layer->weight_grad()), twice_dgamma, 1e-5, 1e-5));
      EXPECT_TRUE(all_close("bias_grad (accumulated)", values_of(layer->bias_grad()), twice_dbeta, 1e-5, 1e-5));
      layer->zero_grad();
      EXPECT_EQ(values_of(layer->weight_grad()), std::vector<float>(C, 0.0f));
      EXPECT_EQ(values_of(layer->bias_grad()), std::vector<float>(C, 0.0f));
    }

    // Eval forward, then backward: frozen statistics, dx = gamma * invstd * dy.
    layer->eval();
    const std::vector<float> lrm = values_of(layer->running_mean());
    std::vector<float> frozen_invstd(C);
    const std::vector<float> lrv = values_of(layer->running_var());
    for (std::size_t c = 0; c < C; ++c)
      frozen_invstd[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(lrv[c]) + eps));
    std::vector<float> y_eval(x.size());
    ref.forward_infer({.problem = p, .eps = eps, .x = x.data(), .mean = lrm.data(),
                       .var = lrv.data(), .gamma = g, .beta = b, .y = y_eval.data()});
    EXPECT_TRUE(all_close("y (eval)", values_of(layer->forward(xt)), y_eval, 1e-5, 1e-5));
    std::vector<float> dx_frozen(x.size()), dgamma_frozen(C, 0.0f), dbeta_frozen(C, 0.0f);
    ref.backward({.problem = p, .statistics = BatchNormStatistics::frozen,
                  .mask = {.dx = true, .dgamma = affine, .dbeta = affine}, .x = x.data(),
                  .dy = dy.data(), .mean = lrm.data(), .invstd = frozen_invstd.data(), .gamma = g,
                  .dx = dx_frozen.data(), .dgamma = affine ? dgamma_frozen.data() : nullptr,
                  .dbeta = affine ? dbeta_frozen.data() : nullptr, .workspace = no_workspace});
    EXPECT_TRUE(all_close("dx (eval: frozen)", values_of(layer->backward(dyt)), dx_frozen, 1e-5, 1e-5));
    if (affine) {
      EXPECT_TRUE(all_close("weight_grad (eval)", values_of(layer->weight_grad()), dgamma_frozen, 1e-5, 1e-5));
      EXPECT_TRUE(all_close("bias_grad (eval)", values_of(layer->bias_grad()), dbeta_frozen, 1e-5, 1e-5));
    }
  }
}

const ShapeCase layer_shapes[] = {
    {{7, 3}, Layout::channels_first},
    {{4, 5, 9}, Layout::channels_first},    {{4, 5, 9}, Layout::channels_last},
    {{1, 3, 4, 5}, Layout::channels_first}, {{4, 3, 5, 5}, Layout::channels_last},
    {{5, 17, 1, 1}, Layout::channels_first}, {{2, 9, 3, 5}, Layout::channels_last},
    {{2, 3, 2, 3, 4}, Layout::channels_first}, {{2, 3, 2, 3, 4}, Layout::channels_last},
};
INSTANTIATE_TEST_SUITE_P(Shapes, LayerVsReference, ::testing::ValuesIn(layer_shapes), shape_case_name);

// ---- Errors: each message names the layer and prints the shapes involved.

Tensor random_tensor(const Shape& shape, Layout layout) {
  return tensor_of(random_uniform(static_cast<std::size_t>(shape.numel()), 90, -1.0f, 1.0f), shape, layout);
}

TEST(LayerErrors, WrongChannelCount) {
  BatchNorm2d layer({.num_features = 3});
  const std::string what = thrown_message<std::invalid_argument>(
      [&] { layer.forward(random_tensor({4, 5, 5, 5}, Layout::channels_first)); });
  EXPECT_NE(what.find("BatchNorm2d"), std::string::npos) << what;
  EXPECT_NE(what.find("C=3"), std::string::npos) << what;
  EXPECT_NE(what.find("(4, 5, 5, 5)"), std::string::npos) << what;
}

TEST(LayerErrors, WrongRank) {
  BatchNorm2d layer2d({.num_features = 3});
  std::string what = thrown_message<std::invalid_argument>(
      [&] { layer2d.forward(random_tensor({4, 3, 5}, Layout::channels_first)); });
  EXPECT_NE(what.find("(4, 3, 5)"), std::string::npos) << what;
  EXPECT_NE(what.find("rank 4"), std::string::npos) << what;

  BatchNorm1d layer1d({.num_features = 3});
  what = thrown_message<std::invalid_argument>(
      [&] { layer1d.forward(random_tensor({4, 3, 5, 5}, Layout::channels_first)); });
  EXPECT_NE(what.find("(4, 3, 5, 5)"), std::string::npos) << what;
  EXPECT_NE(what.find("rank 2 or 3"), std::string::npos) << what;
  what = thrown_message<std::invalid_argument>(
      [&] { layer1d.forward(random_tensor({3}, Layout::channels_first)); });
  EXPECT_NE(what.find("(3)"), std::string::npos) << what;

  BatchNorm3d layer3d({.num_features = 3});
  what = thrown_message<std::invalid_argument>(
      [&] { layer3d.forward(random_tensor({4, 3, 5, 5}, Layout::channels_first)); });
  EXPECT_NE(what.find("(4, 3, 5, 5)"), std::string::npos) << what;
}

TEST(LayerErrors, WrongLayout) {
  BatchNorm2d layer({.num_features = 3, .layout = Layout::channels_first});
  const std::string what = thrown_message<std::invalid_argument>(
      [&] { layer.forward(random_tensor({4, 3, 5, 5}, Layout::channels_last)); });
  EXPECT_NE(what.find("(4, 3, 5, 5)"), std::string::npos) << what;
  EXPECT_NE(what.find("channels_last"), std::string::npos) << what;
  EXPECT_NE(what.find("layout=channels_first"), std::string::npos) << what;
}

TEST(LayerErrors, TwoDimensionalInputHasOneLayout) {
  // (N, C) memory is the same in both layouts: a channels_last layer accepts either tag.
  BatchNorm1d layer({.num_features = 3, .layout = Layout::channels_last});
  EXPECT_NO_THROW(layer.forward(random_tensor({4, 3}, Layout::channels_first)));
  EXPECT_NO_THROW(layer.forward(random_tensor({4, 3}, Layout::channels_last)));
}

TEST(LayerErrors, UndefinedInput) {
  BatchNorm2d layer({.num_features = 3});
  const std::string what = thrown_message<std::invalid_argument>([&] { layer.forward(Tensor{}); });
  EXPECT_NE(what.find("undefined"), std::string::npos) << what;
}

TEST(LayerErrors, BackwardBeforeForward) {
  BatchNorm2d layer({.num_features = 3});
  const std::string what = thrown_message<std::logic_error>(
      [&] { layer.backward(random_tensor({4, 3, 5, 5}, Layout::channels_first)); });
  EXPECT_NE(what.find("before forward"), std::string::npos) << what;
}

TEST(LayerErrors, BackwardWithWrongShapeOrLayout) {
  BatchNorm2d layer({.num_features = 3});
  layer.forward(random_tensor({4, 3, 5, 5}, Layout::channels_first));
  std::string what = thrown_message<std::invalid_argument>(
      [&] { layer.backward(random_tensor({4, 3, 5, 6}, Layout::channels_first)); });
  EXPECT_NE(what.find("(4, 3, 5, 5)"), std::string::npos) << what;
  EXPECT_NE(what.find("(4, 3, 5, 6)"), std::string::npos) << what;
  what = thrown_message<std::invalid_argument>(
      [&] { layer.backward(random_tensor({4, 3, 5, 5}, Layout::channels_last)); });
  EXPECT_NE(what.find("channels_last"), std::string::npos) << what;
  EXPECT_NE(what.find("(4, 3, 5, 5)"), std::string::npos) << what;
}

TEST(LayerErrors, BadOptions) {
  EXPECT_THROW(BatchNorm2d({.num_features = 0}), std::invalid_argument);
  EXPECT_THROW(BatchNorm2d({.num_features = 3, .eps = -1e-5}), std::invalid_argument);
  EXPECT_THROW(BatchNorm2d({.num_features = 3, .eps = std::nan("")}), std::invalid_argument);
  EXPECT_THROW(BatchNorm2d({.num_features = 3, .momentum = 1.5}), std::invalid_argument);
  EXPECT_THROW(BatchNorm2d({.num_features = 3, .momentum = -0.1}), std::invalid_argument);
  const std::string what = thrown_message<std::invalid_argument>(
      [] { BatchNorm3d({.num_features = -2}); });
  EXPECT_NE(what.find("-2"), std::string::npos) << what;
}

// Eval with running statistics needs no batch statistics: one value per channel is fine.
TEST(LayerEval, OneValuePerChannelIsFineInEval) {
  BatchNorm2d layer({.num_features = 3});
  layer.forward(random_tensor({4, 3, 5, 5}, Layout::channels_first));
  layer.eval();
  const Tensor y = layer.forward(random_tensor({1, 3, 1, 1}, Layout::channels_first));
  for (float v : values_of(y)) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NO_THROW(layer.backward(random_tensor({1, 3, 1, 1}, Layout::channels_first)));
}

}  // namespace
}  // namespace bnorm::test
