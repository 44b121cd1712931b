// Running statistics through the layers (BatchNorm1d/2d/3d): several training steps compared
// with the sequence computed by hand in double, from the conventions in
// bnorm/kernels/batchnorm.hpp:
//   f = momentum, or 1 / num_batches_tracked (after this batch) when momentum is none;
//   running_mean = (1 - f) * running_mean + f * mean
//   running_var  = (1 - f) * running_var  + f * M2 / (m - 1)      (unbiased)
// and then evaluation with those statistics. Also: eval mode normalizes every example by
// itself (a row of a batch equals the same example alone), and track_running_stats = false
// uses batch statistics in eval.
#include <gtest/gtest.h>

#include <optional>

#include "batchnorm_test_support.hpp"

namespace bnorm::test {
namespace {

struct LayerCase {
  std::vector<std::int64_t> dims;
  Layout layout;
  std::optional<double> momentum;
};
std::string layer_case_name(const ::testing::TestParamInfo<LayerCase>& info) {
  const LayerCase& c = info.param;
  std::ostringstream m;
  if (c.momentum) m << "momentum" << *c.momentum;
  else m << "momentum_none";
  return test_name(layer_case_text(Shape(c.dims), c.layout) + "_" + m.str());
}
void PrintTo(const LayerCase& c, std::ostream* os) {
  *os << layer_case_text(Shape(c.dims), c.layout);
}

// Per channel (mean, M2) of x in double, two passes.
void channel_stats(const BatchNormProblem& p, const std::vector<float>& x,
                   std::vector<double>& mean, std::vector<double>& m2) {
  const auto C = static_cast<std::size_t>(p.channels);
  mean.assign(C, 0.0);
  m2.assign(C, 0.0);
  for (std::size_t i = 0; i < x.size(); ++i) mean[static_cast<std::size_t>(channel_of(p, i))] += x[i];
  for (double& v : mean) v /= static_cast<double>(p.values_per_channel());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto c = static_cast<std::size_t>(channel_of(p, i));
    m2[c] += (x[i] - mean[c]) * (x[i] - mean[c]);
  }
}

// Batch `step` of a sequence: statistics that move from step to step.
std::vector<float> step_input(const BatchNormProblem& p, int step) {
  std::vector<float> x = random_input(p, 100 + static_cast<std::uint32_t>(step));
  for (float& v : x) v = v * (1.0f + 0.5f * static_cast<float>(step)) + 0.75f * static_cast<float>(step);
  return x;
}

class RunningStats : public ::testing::TestWithParam<LayerCase> {};

TEST_P(RunningStats, FollowTheHandComputedSequence) {
  const LayerCase& lc = GetParam();
  const Shape shape(lc.dims);
  const Layout layout = lc.layout;
  const BatchNormProblem p = BatchNormProblem::from_shape(shape, layout);
  BNORM_REQUIRE_FORCED_IMPL_ACCEPTS(p);
  const auto C = static_cast<std::size_t>(p.channels);
  const double eps = 1e-5;
  auto layer = make_layer(shape.rank(), {.num_features = p.channels, .eps = eps,
                                         .momentum = lc.momentum, .layout = layout});
  const std::vector<float> gamma = random_uniform(C, 60, 0.5f, 1.5f);
  const std::vector<float> beta = random_uniform(C, 61, -1.0f, 1.0f);
  std::copy(gamma.begin(), gamma.end(), layer->weight().data_f32());
  std::copy(beta.begin(), beta.end(), layer->bias().data_f32());

  std::vector<double> rm(C, 0.0), rv(C, 1.0);  // the initial buffers
  const double m = static_cast<double>(p.values_per_channel());
  for (int step = 1; step <= 4; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const std::vector<float> x = step_input(p, step);
    const std::vector<float> y = values_of(layer->forward(tensor_of(x, shape, layout)));
    std::vector<double> mean, m2;
    channel_stats(p, x, mean, m2);
    const double f = lc.momentum ? *lc.momentum : 1.0 / step;
    for (std::size_t c = 0; c < C; ++c) {
      rm[c] = (1 - f) * rm[c] + f * mean[c];
      rv[c] = (1 - f) * rv[c] + f * m2[c] / (m - 1);
    }
    EXPECT_EQ(layer->num_batches_tracked(), step);
    EXPECT_TRUE(all_close("running_mean", values_of(layer->running_mean()), rm, 1e-5, 1e-6));
    EXPECT_TRUE(all_close("running_var", values_of(layer->running_var()), rv, 1e-5, 0.0));
    // The output is normalized with the batch's own (biased) statistics.
    std::vector<double> want(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      const auto c = static_cast<std::size_t>(channel_of(p, i));
      want[i] = gamma[c] * (x[i] - mean[c]) / std::sqrt(m2[c] / m + eps) + beta[c];
    }
    EXPECT_TRUE(all_close("y (train)", y, want, 1e-5, 1e-5));
  }

  // Eval: the running statistics as stored (float), num_batches_tracked unchanged.
  layer->eval();
  const std::vector<float> x = step_input(p, 9);
  const std::vector<float> y = values_of(layer->forward(tensor_of(x, shape, layout)));
  const std::vector<float> srm = values_of(layer->running_mean());
  const std::vector<float> srv = values_of(layer->running_var());
  std::vector<double> want(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto c = static_cast<std::size_t>(channel_of(p, i));
    want[i] = gamma[c] * (x[i] - static_cast<double>(srm[c])) / std::sqrt(srv[c] + eps) + beta[c];
  }
  EXPECT_TRUE(all_close("y (eval)", y, want, 1e-5, 1e-5));
  EXPECT_EQ(layer->num_batches_tracked(), 4);
  EXPECT_EQ(values_of(layer->running_mean()), srm) << "eval must not update running stats";

  // reset_running_stats starts the sequence again.
  layer->reset_running_stats();
  EXPECT_EQ(layer->num_batches_tracked(), 0);
  EXPECT_EQ(values_of(layer->running_mean()), std::vector<float>(C, 0.0f));
  EXPECT_EQ(values_of(layer->running_var()), std::vector<float>(C, 1.0f));
}

const LayerCase running_cases[] = {
    {{8, 5}, Layout::channels_first, 0.1},
    {{8, 5}, Layout::channels_first, std::nullopt},
    {{4, 3, 7}, Layout::channels_first, 0.3},
    {{4, 3, 7}, Layout::channels_last, std::nullopt},
    {{4, 3, 5, 5}, Layout::channels_last, 0.3},
    {{4, 3, 5, 5}, Layout::channels_first, 0.1},
    {{2, 4, 3, 3}, Layout::channels_first, std::nullopt},
    {{3, 6, 1, 1}, Layout::channels_last, 0.1},
    {{2, 3, 2, 3, 4}, Layout::channels_last, 0.1},
    {{2, 3, 2, 3, 4}, Layout::channels_first, std::nullopt},
    {{4, 3, 5, 5}, Layout::channels_first, 0.0},  // running stats never move
    {{4, 3, 5, 5}, Layout::channels_last, 1.0},   // running stats are the last batch's
};
INSTANTIATE_TEST_SUITE_P(Layers, RunningStats, ::testing::ValuesIn(running_cases), layer_case_name);

// ---- Eval mode: each example is normalized by the running statistics alone, so a row of a
// batch equals the same example run by itself (no cross-example dependence in eval).
class EvalMode : public ::testing::TestWithParam<LayerCase> {};

TEST_P(EvalMode, RowOfBatchEqualsSingleExample) {
  const LayerCase& lc = GetParam();
  const Shape shape(lc.dims);
  const BatchNormProblem p = BatchNormProblem::from_shape(shape, lc.layout);
  BNORM_REQUIRE_FORCED_IMPL_ACCEPTS(p);
  auto layer = make_layer(shape.rank(), {.num_features = p.channels, .momentum = lc.momentum,
                                         .layout = lc.layout});
  const auto C = static_cast<std::size_t>(p.channels);
  const std::vector<float> gamma = random_uniform(C, 70, 0.5f, 1.5f);
  std::copy(gamma.begin(), gamma.end(), layer->weight().data_f32());
  for (int step = 1; step <= 3; ++step) layer->forward(tensor_of(step_input(p, step), shape, lc.layout));
  layer->eval();
  const std::vector<float> x = step_input(p, 7);
  const std::vector<float> y = values_of(layer->forward(tensor_of(x, shape, lc.layout)));
  // Example n is contiguous in both layouts: C * S values from n * C * S.
  std::vector<std::int64_t> one = lc.dims;
  one[0] = 1;
  const auto per_example = static_cast<std::size_t>(p.channels * p.spatial);
  for (std::int64_t n = 0; n < p.batch; ++n) {
    const auto first = static_cast<std::ptrdiff_t>(static_cast<std::size_t>(n) * per_example);
    const std::vector<float> xn(x.begin() + first, x.begin() + first + static_cast<std::ptrdiff_t>(per_example));
    const std::vector<float> yn = values_of(layer->forward(tensor_of(xn, Shape(one), lc.layout)));
    const std::vector<float> row(y.begin() + first, y.begin() + first + static_cast<std::ptrdiff_t>(per_example));
    EXPECT_TRUE(all_close("example alone vs its row", yn, row, 1e-6, 1e-6)) << "n = " << n;
  }
  EXPECT_EQ(layer->num_batches_tracked(), 3);
}

const LayerCase eval_cases[] = {
    {{6, 5}, Layout::channels_first, 0.1},
    {{5, 3, 7}, Layout::channels_last, 0.1},
    {{4, 3, 5, 5}, Layout::channels_first, 0.3},
    {{4, 3, 5, 5}, Layout::channels_last, std::nullopt},
    {{3, 2, 2, 3, 4}, Layout::channels_last, 0.1},
};
INSTANTIATE_TEST_SUITE_P(Layers, EvalMode, ::testing::ValuesIn(eval_cases), layer_case_name);

// Without running statistics, eval normalizes with the batch's statistics: the same output as
// training, no buffers, nothing tracked.
TEST(EvalMode, WithoutRunningStatsUsesBatchStatistics) {
  for (Layout layout : {Layout::channels_first, Layout::channels_last}) {
    const Shape shape{4, 3, 5, 5};
    const BatchNormProblem p = BatchNormProblem::from_shape(shape, layout);
    BatchNorm2d layer({.num_features = 3, .track_running_stats = false, .layout = layout});
    EXPECT_FALSE(layer.running_mean().defined());
    EXPECT_FALSE(layer.running_var().defined());
    const std::vector<float> x = step_input(p, 3);
    const std::vector<float> y_train = values_of(layer.forward(tensor_of(x, shape, layout)));
    layer.eval();
    const std::vector<float> y_eval = values_of(layer.forward(tensor_of(x, shape, layout)));
    EXPECT_TRUE(bitwise_equal("eval vs train output", y_eval, y_train));
    EXPECT_EQ(layer.num_batches_tracked(), 0);

    // A single example in eval: normalized by its own statistics (N = 1, S > 1 is fine).
    const Shape one{1, 3, 5, 5};
    const BatchNormProblem p1 = BatchNormProblem::from_shape(one, layout);
    const std::vector<float> x1(x.begin(), x.begin() + 75);
    const std::vector<float> y1 = values_of(layer.forward(tensor_of(x1, one, layout)));
    std::vector<double> mean, m2;
    channel_stats(p1, x1, mean, m2);
    std::vector<double> want(x1.size());
    for (std::size_t i = 0; i < x1.size(); ++i) {
      const auto c = static_cast<std::size_t>(channel_of(p1, i));
      want[i] = (x1[i] - mean[c]) / std::sqrt(m2[c] / 25.0 + 1e-5);
    }
    EXPECT_TRUE(all_close("single example, eval, batch stats", y1, want, 1e-5, 1e-5));
  }
}

}  // namespace
}  // namespace bnorm::test
