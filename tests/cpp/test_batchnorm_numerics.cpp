// Numerical robustness of every implementation (the reference included), against float64
// two-pass statistics of the same float32 values:
//  - large offsets: |mean|/std up to 1e3 must give mean and variance to 1e-5 relative, up to
//    1e5 to 1e-3, and the extreme mean 1e4, std 1e-3 (1e7, where float32 values are spaced
//    about one std apart) to 1e-2;
//  - a pivot far from the mean (the fast kernels' shifted sums) is summed again, to 1e-5;
//  - adversarial finite inputs: the variance is never negative or NaN (defined below);
//  - constant channels: variance 0, y == beta exactly, invstd = 1/sqrt(eps);
//  - NaN and Inf stay in their channel;
//  - training with one value per channel is an error that says so;
//  - shard moments merged with Chan's formula equal the whole batch's.
#include <gtest/gtest.h>

#include <limits>

#include "batchnorm_test_support.hpp"

namespace bnorm::test {
namespace {

class Numerics : public ::testing::TestWithParam<const BatchNormImpl*> {};
std::string impl_name(const ::testing::TestParamInfo<const BatchNormImpl*>& info) {
  return info.param->name;
}

struct Stats {
  std::vector<double> mean, var;  // biased variance
};
// The float64 two-pass oracle over the float32 values.
Stats two_pass(const BatchNormProblem& p, const std::vector<float>& x) {
  const auto C = static_cast<std::size_t>(p.channels);
  const double m = static_cast<double>(p.values_per_channel());
  Stats s{std::vector<double>(C, 0.0), std::vector<double>(C, 0.0)};
  for (std::size_t i = 0; i < x.size(); ++i) s.mean[static_cast<std::size_t>(channel_of(p, i))] += x[i];
  for (double& v : s.mean) v /= m;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto c = static_cast<std::size_t>(channel_of(p, i));
    s.var[c] += (x[i] - s.mean[c]) * (x[i] - s.mean[c]);
  }
  for (double& v : s.var) v /= m;
  return s;
}

struct TrainResult {
  std::vector<float> y, mean, invstd, running_mean, running_var;
  std::vector<double> moments_mean, moments_m2;
};
TrainResult train(const BatchNormImpl& impl, const BatchNormProblem& p, const std::vector<float>& x,
                  double eps, const std::vector<float>* gamma = nullptr,
                  const std::vector<float>* beta = nullptr) {
  const auto C = static_cast<std::size_t>(p.channels);
  TrainResult r{std::vector<float>(x.size()), std::vector<float>(C), std::vector<float>(C),
                std::vector<float>(C, 0.0f), std::vector<float>(C, 1.0f),
                std::vector<double>(C), std::vector<double>(C)};
  std::vector<std::byte> workspace = workspace_for(impl, p);
  impl.forward_train({.problem = p, .eps = eps, .x = x.data(),
                      .gamma = gamma ? gamma->data() : nullptr,
                      .beta = beta ? beta->data() : nullptr, .y = r.y.data(),
                      .save_mean = r.mean.data(), .save_invstd = r.invstd.data(),
                      .running = {.mean = r.running_mean.data(), .var = r.running_var.data(),
                                  .factor = 0.5},
                      .workspace = workspace});
  impl.moments(p, x.data(), {.count = 0, .mean = r.moments_mean.data(), .m2 = r.moments_m2.data()},
               workspace);
  return r;
}

// ---- Large offsets.
struct Offset {
  double mean, std, tolerance;
};

TEST_P(Numerics, LargeOffsets) {
  const BatchNormImpl& impl = *GetParam();
  const Offset offsets[] = {
      {1e3, 1.0, 1e-5}, {-5e2, 0.5, 1e-5}, {2.0, 2e-3, 1e-5},   // |mean|/std <= 1e3
      {1e5, 1.0, 1e-3}, {-3e4, 0.3, 1e-3}, {50.0, 5e-4, 1e-3},  // <= 1e5
      {1e4, 1e-3, 1e-2},                                         // 1e7: float32 spacing ~ std
  };
  // n4c3s100:nchw: channels_first with short runs (cpu: images as rows, forward and moments).
  for (const char* text : {"n4c3s250:nchw", "n4c3s250:nhwc", "n1000c3:nc", "n4c3s100:nchw"}) {
    const BatchNormProblem p = parse_problem(text);
    BNORM_REQUIRE_ACCEPTS(impl, p);
    const double m = static_cast<double>(p.values_per_channel());
    for (const Offset& o : offsets) {
      SCOPED_TRACE(::testing::Message() << text << " mean " << o.mean << " std " << o.std);
      const std::vector<float> x = random_normal(static_cast<std::size_t>(p.numel()), 7, o.mean, o.std);
      const Stats want = two_pass(p, x);
      const TrainResult got = train(impl, p, x, /*eps=*/0.0);  // eps 0: invstd gives var back
      for (std::size_t c = 0; c < static_cast<std::size_t>(p.channels); ++c) {
        const double var_from_invstd = 1.0 / (static_cast<double>(got.invstd[c]) * got.invstd[c]);
        EXPECT_NEAR(got.mean[c], want.mean[c], o.tolerance * std::abs(want.mean[c])) << "save_mean c=" << c;
        EXPECT_NEAR(var_from_invstd, want.var[c], o.tolerance * want.var[c]) << "save_invstd c=" << c;
        EXPECT_NEAR(got.moments_mean[c], want.mean[c], o.tolerance * std::abs(want.mean[c])) << "moments c=" << c;
        EXPECT_NEAR(got.moments_m2[c] / m, want.var[c], o.tolerance * want.var[c]) << "moments c=" << c;
        EXPECT_NEAR(got.running_var[c], 0.5 + 0.5 * want.var[c] * m / (m - 1),
                    o.tolerance * (0.5 + want.var[c])) << "running_var c=" << c;
      }
      // y: x - mean cancels |mean|/std digits in float32, so its error is relative to that.
      const double ratio = std::abs(o.mean) / o.std;
      for (std::size_t i = 0; i < x.size(); ++i) {
        const auto c = static_cast<std::size_t>(channel_of(p, i));
        const double want_y = (x[i] - want.mean[c]) / std::sqrt(want.var[c]);
        ASSERT_NEAR(got.y[i], want_y, 1e-6 * (ratio + 10) + 1e-5 * std::abs(want_y)) << "y[" << i << "]";
      }
    }
  }
}

// ---- A poor pivot. The fast kernels sum x - K around a pivot K per channel, and sum
// again around the mean where K was more than 2 std from it. K is the channel's first
// value (channels_first channel blocks), the mean of its first 8 values in image 0
// (channels_first image rows), of its first 16 rows ((N, C)), or of 16 rows spread over
// the batch (channels_last images). Here those values (put_pivots_far: 31 to 46 of them)
// are 1e4 + z, the others z (z normal), so in every layout K is ~60 std from the mean, and
// sums around it lose ~3.6 digits to cancellation (d^2 / var ~ m / 40, for m = 160000 and
// 320000). With the re-sum disabled, the variance of the chunked layouts was off by 1e-5
// to 3.5e-5 (measured; the channel blocks, which fold into double more often, stayed
// within the bound of 1e-5).
TEST_P(Numerics, PoorPivotIsSummedAgainAroundTheMean) {
  const BatchNormImpl& impl = *GetParam();
  for (const char* text : {"n640c3s250:nchw", "n2500c3s64:nchw", "n640c3s250:nhwc", "n320000c3:nc"}) {
    SCOPED_TRACE(text);
    const BatchNormProblem p = parse_problem(text);
    BNORM_REQUIRE_ACCEPTS(impl, p);
    const std::int64_t m = p.values_per_channel();
    std::vector<float> x = random_normal(static_cast<std::size_t>(p.numel()), 11, 0.0, 1.0);
    for (std::int64_t c = 0; c < p.channels; ++c) put_pivots_far(p, x, c, 1e4f);
    const Stats want = two_pass(p, x);
    const TrainResult got = train(impl, p, x, /*eps=*/0.0);
    for (std::size_t c = 0; c < static_cast<std::size_t>(p.channels); ++c) {
      ASSERT_GT(std::abs(1e4 - want.mean[c]), 20 * std::sqrt(want.var[c]));  // the pivot is poor
      const double var_from_invstd = 1.0 / (static_cast<double>(got.invstd[c]) * got.invstd[c]);
      EXPECT_NEAR(got.mean[c], want.mean[c], 1e-5 * std::abs(want.mean[c])) << "save_mean c=" << c;
      EXPECT_NEAR(var_from_invstd, want.var[c], 1e-5 * want.var[c]) << "save_invstd c=" << c;
      EXPECT_NEAR(got.moments_m2[c] / static_cast<double>(m), want.var[c], 1e-5 * want.var[c])
          << "moments c=" << c;
    }
  }
}

// ---- Adversarial finite inputs. What we assert, per channel kind:
//  c0: 1e6 and 1e6 + 1/16 alternating (float32 neighbours; E[x^2] - E[x]^2 in float gives
//      garbage or a negative number): var >= 0, finite, within 1e-2 of the float64 value;
//  c1: +-1e18 alternating (squares 1e36 fit in float32, their sum over m values too):
//      var finite, within 1e-3 of float64, y finite;
//  c2: +-3e38 alternating: the variance (9e76) does not fit in float32. Overflow is legitimate,
//      so we assert only: invstd is not NaN and >= 0 (0 or a subnormal), moments.m2 is not NaN
//      and >= 0 (possibly +inf), and nothing crashes;
//  c3: subnormals (1e-40) and zeros: var >= 0, finite, invstd finite, y finite;
//  c4: one large value among zeros (1e18 at one place): var finite >= 0, within 1e-3.
TEST_P(Numerics, AdversarialFiniteInputsNeverGiveNegativeOrNaNVariance) {
  const BatchNormImpl& impl = *GetParam();
  for (const char* text : {"n6c5s5:nchw", "n6c5s5:nhwc", "n30c5:nc", "n6c5s10:nchw"}) {
    SCOPED_TRACE(text);
    const BatchNormProblem p = parse_problem(text);
    BNORM_REQUIRE_ACCEPTS(impl, p);
    const double m = static_cast<double>(p.values_per_channel());
    std::vector<float> x(static_cast<std::size_t>(p.numel()));
    std::int64_t k = 0;
    for (std::int64_t n = 0; n < p.batch; ++n)
      for (std::int64_t s = 0; s < p.spatial; ++s, ++k) {
        const float sign = (k % 2) ? 1.0f : -1.0f;
        x[index_of(p, n, 0, s)] = 1e6f + ((k % 2) ? 0.0625f : 0.0f);
        x[index_of(p, n, 1, s)] = sign * 1e18f;
        x[index_of(p, n, 2, s)] = sign * 3e38f;
        x[index_of(p, n, 3, s)] = (k % 3) ? 1e-40f : 0.0f;
        x[index_of(p, n, 4, s)] = k == 7 ? 1e18f : 0.0f;
      }
    const Stats want = two_pass(p, x);
    const TrainResult got = train(impl, p, x, 1e-5);
    auto var_of = [&](std::size_t c) {  // biased variance from save_invstd
      return 1.0 / (static_cast<double>(got.invstd[c]) * got.invstd[c]) - 1e-5;
    };
    for (std::size_t c : {0u, 1u, 3u, 4u}) {
      SCOPED_TRACE("channel " + std::to_string(c));
      EXPECT_TRUE(std::isfinite(got.invstd[c]) && got.invstd[c] > 0) << got.invstd[c];
      EXPECT_TRUE(std::isfinite(got.moments_m2[c]) && got.moments_m2[c] >= 0) << got.moments_m2[c];
      EXPECT_TRUE(std::isfinite(got.running_var[c]) && got.running_var[c] >= 0) << got.running_var[c];
    }
    EXPECT_NEAR(got.moments_m2[0] / m, want.var[0], 1e-2 * want.var[0]);
    EXPECT_NEAR(var_of(0), want.var[0] + 0.0, 1e-2 * want.var[0] + 1e-9);
    EXPECT_NEAR(got.moments_m2[1] / m, want.var[1], 1e-3 * want.var[1]);
    EXPECT_NEAR(var_of(1), want.var[1], 1e-3 * want.var[1]);
    EXPECT_NEAR(got.moments_m2[4] / m, want.var[4], 1e-3 * want.var[4]);
    EXPECT_NEAR(var_of(4), want.var[4], 1e-3 * want.var[4]);
    EXPECT_FALSE(std::isnan(got.invstd[2]));
    EXPECT_GE(got.invstd[2], 0.0f);
    EXPECT_FALSE(std::isnan(got.moments_m2[2]));
    EXPECT_GE(got.moments_m2[2], 0.0);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::int64_t c = channel_of(p, i);
      if (c == 1 || c == 3 || c == 4) {
        ASSERT_TRUE(std::isfinite(got.y[i])) << "y[" << i << "] c=" << c;
      }
    }
  }
}

// ---- Constant channels: variance 0.
TEST_P(Numerics, ConstantChannelsGiveBetaExactly) {
  const BatchNormImpl& impl = *GetParam();
  const float constants[] = {3.7f, -1e4f, 0.0f, 1e-30f, 12345.678f, -0.1f, 7.0f};
  for (const char* text : {"n3c7s11:nchw", "n3c7s11:nhwc", "n13c7:nc", "n1c7s2:nchw", "n4c7s11:nchw"}) {
    SCOPED_TRACE(text);
    const BatchNormProblem p = parse_problem(text);
    BNORM_REQUIRE_ACCEPTS(impl, p);
    std::vector<float> x(static_cast<std::size_t>(p.numel()));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = constants[channel_of(p, i)];
    const std::vector<float> gamma = random_uniform(7, 1, 0.5f, 1.5f);
    const std::vector<float> beta = random_uniform(7, 2, -1.0f, 1.0f);
    const double eps = 1e-5;
    const TrainResult got = train(impl, p, x, eps, &gamma, &beta);
    const float invstd = static_cast<float>(1.0 / std::sqrt(eps));
    for (std::size_t c = 0; c < 7; ++c) {
      EXPECT_EQ(got.mean[c], constants[c]) << "c=" << c;
      EXPECT_FLOAT_EQ(got.invstd[c], invstd) << "c=" << c;
      EXPECT_EQ(got.moments_m2[c], 0.0) << "c=" << c;
      EXPECT_EQ(got.running_var[c], 0.5f) << "c=" << c;  // (1 - 0.5) * 1 + 0.5 * 0
    }
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(got.y[i], beta[static_cast<std::size_t>(channel_of(p, i))]) << "y[" << i << "]";
  }
}

// ---- NaN and Inf stay in their channel; nothing crashes.
TEST_P(Numerics, NonFiniteValuesStayInTheirChannel) {
  const BatchNormImpl& impl = *GetParam();
  const BatchNormImpl& ref = reference_impl();
  for (const char* text : {"n4c5s7:nchw", "n4c5s7:nhwc", "n9c5:nc", "n4c5s13:nchw"}) {
    SCOPED_TRACE(text);
    const BatchNormProblem p = parse_problem(text);
    BNORM_REQUIRE_ACCEPTS(impl, p);
    const auto C = static_cast<std::size_t>(p.channels);
    std::vector<float> x = random_input(p, 5);
    std::vector<float> dy = random_uniform(x.size(), 6, -1.0f, 1.0f);
    const std::vector<float> gamma = random_uniform(C, 7, 0.5f, 1.5f);
    const std::vector<float> beta = random_uniform(C, 8, -1.0f, 1.0f);
    x[index_of(p, 1, 1, 0)] = std::numeric_limits<float>::quiet_NaN();
    x[index_of(p, 2, 3, 0)] = std::numeric_limits<float>::infinity();
    dy[index_of(p, 0, 2, 0)] = -std::numeric_limits<float>::infinity();
    dy[index_of(p, 3, 4, 0)] = std::numeric_limits<float>::quiet_NaN();
    auto clean = [](std::int64_t c) { return c == 0; };  // channel 0 is finite in x and dy

    const TrainResult want = train(ref, p, x, 1e-5, &gamma, &beta);
    const TrainResult got = train(impl, p, x, 1e-5, &gamma, &beta);
    std::vector<float> y_infer(x.size()), y_infer_ref(x.size());
    for (auto [which, out] : {std::pair{&impl, &y_infer}, std::pair{&ref, &y_infer_ref}})
      which->forward_infer({.problem = p, .x = x.data(), .mean = want.running_mean.data(),
                            .var = want.running_var.data(), .gamma = gamma.data(),
                            .beta = beta.data(), .y = out->data()});
    // The backward of the finite channel 2 and 4 inputs (x is finite there; dy is not).
    struct Grads { std::vector<float> dx, dgamma, dbeta; };
    auto backward = [&](const BatchNormImpl& which) {
      Grads g{std::vector<float>(x.size()), std::vector<float>(C, 0.0f), std::vector<float>(C, 0.0f)};
      std::vector<std::byte> workspace = workspace_for(which, p);
      which.backward({.problem = p, .x = x.data(), .dy = dy.data(), .mean = want.mean.data(),
                      .invstd = want.invstd.data(), .gamma = gamma.data(), .dx = g.dx.data(),
                      .dgamma = g.dgamma.data(), .dbeta = g.dbeta.data(), .workspace = workspace});
      return g;
    };
    const Grads gw = backward(ref), gg = backward(impl);

    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::int64_t c = channel_of(p, i);
      if (c == 1 || c == 3) continue;  // non-finite x: anything but a crash
      ASSERT_TRUE(std::isfinite(got.y[i])) << "y[" << i << "] c=" << c;
      ASSERT_NEAR(got.y[i], want.y[i], 1e-5 * (1 + std::abs(want.y[i]))) << "y[" << i << "]";
      ASSERT_NEAR(y_infer[i], y_infer_ref[i], 1e-5 * (1 + std::abs(y_infer_ref[i]))) << "infer y[" << i << "]";
      if (clean(c)) {
        ASSERT_TRUE(std::isfinite(gg.dx[i])) << "dx[" << i << "]";
        ASSERT_NEAR(gg.dx[i], gw.dx[i], 1e-5 * (1 + std::abs(gw.dx[i]))) << "dx[" << i << "]";
      }
    }
    for (std::size_t c : {0u, 2u, 4u}) {
      EXPECT_NEAR(got.mean[c], want.mean[c], 1e-5 * (1 + std::abs(want.mean[c]))) << "c=" << c;
      EXPECT_NEAR(got.invstd[c], want.invstd[c], 1e-5 * want.invstd[c]) << "c=" << c;
      EXPECT_TRUE(std::isfinite(got.running_mean[c]) && std::isfinite(got.running_var[c])) << "c=" << c;
      EXPECT_TRUE(std::isfinite(got.moments_m2[c])) << "c=" << c;
    }
    EXPECT_NEAR(gg.dgamma[0], gw.dgamma[0], 1e-4);
    EXPECT_NEAR(gg.dbeta[0], gw.dbeta[0], 1e-4);
    for (std::size_t c : {1u, 3u}) EXPECT_TRUE(std::isfinite(gg.dbeta[c])) << "dbeta c=" << c;
  }
}

INSTANTIATE_TEST_SUITE_P(Impls, Numerics, ::testing::ValuesIn(all_impls()), impl_name);

// ---- One value per channel: batch statistics are undefined; an error, as in PyTorch.
TEST(OneValuePerChannel, EntryPointsThrow) {
  const BatchNormProblem p = parse_problem("n1c3:nc");
  std::vector<float> x{1, 2, 3}, y(3), mean(3), invstd(3, 1.0f), dx(3);
  std::vector<std::byte> workspace(batchnorm_workspace_bytes(p));
  const std::string what = thrown_message<std::invalid_argument>([&] {
    batchnorm_forward_train({.problem = p, .x = x.data(), .y = y.data(), .save_mean = mean.data(),
                             .save_invstd = invstd.data()});
  });
  EXPECT_NE(what.find("more than 1 value per channel"), std::string::npos) << what;
  EXPECT_NE(what.find("n1c3s1"), std::string::npos) << what;
  const std::string what_backward = thrown_message<std::invalid_argument>([&] {
    batchnorm_backward({.problem = p, .mask = {.dx = true, .dgamma = false, .dbeta = false},
                        .x = x.data(), .dy = x.data(), .mean = mean.data(),
                        .invstd = invstd.data(), .dx = dx.data()});
  });
  EXPECT_NE(what_backward.find("more than 1 value per channel"), std::string::npos) << what_backward;
  // Frozen statistics are constants: one value is fine.
  EXPECT_NO_THROW(batchnorm_backward({.problem = p, .statistics = BatchNormStatistics::frozen,
                                      .mask = {.dx = true, .dgamma = false, .dbeta = false},
                                      .x = x.data(), .dy = x.data(), .mean = mean.data(),
                                      .invstd = invstd.data(), .dx = dx.data(),
                                      .workspace = workspace}));
  std::vector<double> mm(3, 0.0), m2(3, 0.0);
  const std::string what_finalize = thrown_message<std::invalid_argument>([&] {
    batchnorm_moments_finalize(3, {.count = 1, .mean = mm.data(), .m2 = m2.data()}, 1e-5,
                               mean.data(), invstd.data(), {});
  });
  EXPECT_NE(what_finalize.find("more than 1 value per channel"), std::string::npos) << what_finalize;
}

TEST(OneValuePerChannel, LayersThrowInTrainingAndKeepTheirState) {
  for (const Shape& shape : {Shape{1, 4}, Shape{1, 4, 1}, Shape{1, 4, 1, 1}, Shape{1, 4, 1, 1, 1}}) {
    SCOPED_TRACE(shape.to_string());
    auto layer = make_layer(shape.rank(), {.num_features = 4});
    const Tensor x = tensor_of(random_uniform(4, 3, -1.0f, 1.0f), shape, Layout::channels_first);
    const std::string what = thrown_message<std::invalid_argument>([&] { layer->forward(x); });
    EXPECT_NE(what.find("more than 1 value per channel"), std::string::npos) << what;
    EXPECT_EQ(layer->num_batches_tracked(), 0);
    EXPECT_EQ(values_of(layer->running_mean()), std::vector<float>(4, 0.0f));
    EXPECT_EQ(values_of(layer->running_var()), std::vector<float>(4, 1.0f));
  }
  // Two values per channel, from N = 1 and S = 2, is fine.
  BatchNorm1d layer({.num_features = 4});
  EXPECT_NO_THROW(layer.forward(tensor_of(random_uniform(8, 3, -1, 1), {1, 4, 2}, Layout::channels_first)));
}

// ---- Chan, Golub & LeVeque: moments of shards merged equal the moments of the whole batch,
// and finalize + forward_infer(invstd) is forward_train.
class ChanMerge : public ::testing::TestWithParam<const BatchNormImpl*> {};

TEST_P(ChanMerge, ShardsMergeToTheWholeBatch) {
  const BatchNormImpl& impl = *GetParam();
  for (const char* text : {"n9c5s7:nchw", "n9c5s7:nhwc", "n9c5:nc"}) {
    SCOPED_TRACE(text);
    const BatchNormProblem whole = parse_problem(text);
    BNORM_REQUIRE_ACCEPTS(impl, whole);
    const auto C = static_cast<std::size_t>(whole.channels);
    std::vector<float> x = random_input(whole, 9);
    for (float& v : x) v += 100.0f;  // an offset, so the delta term of the merge matters
    // Shards along N: example n is contiguous in both layouts.
    const std::int64_t shard_batches[] = {2, 4, 1, 2};
    std::vector<double> mean(C, 0.0), m2(C, 0.0);
    ChannelMoments merged{.count = 0, .mean = mean.data(), .m2 = m2.data()};
    std::int64_t first = 0;
    for (std::int64_t nb : shard_batches) {
      BatchNormProblem shard = whole;
      shard.batch = nb;
      BNORM_REQUIRE_ACCEPTS(impl, shard);
      std::vector<double> sm(C), s2(C);
      std::vector<std::byte> workspace = workspace_for(impl, shard);
      impl.moments(shard, x.data() + first * whole.channels * whole.spatial,
                   {.count = 0, .mean = sm.data(), .m2 = s2.data()}, workspace);
      batchnorm_moments_merge(whole.channels, merged,
                              {.count = shard.values_per_channel(), .mean = sm.data(), .m2 = s2.data()});
      first += nb;
    }
    // Merging an empty partial changes nothing.
    batchnorm_moments_merge(whole.channels, merged, {.count = 0, .mean = nullptr, .m2 = nullptr});
    ASSERT_EQ(first, whole.batch);
    EXPECT_EQ(merged.count, whole.values_per_channel());

    std::vector<double> wm(C), w2(C);
    ChannelMoments want{.count = 0, .mean = wm.data(), .m2 = w2.data()};
    std::vector<std::byte> workspace(batchnorm_workspace_bytes(whole));
    batchnorm_moments(whole, x.data(), want, workspace);  // the entry point sets the count
    EXPECT_EQ(want.count, whole.values_per_channel());
    std::vector<double> tol_mean(C), tol_m2(C);
    for (std::size_t c = 0; c < C; ++c) tol_mean[c] = 1e-6 * std::abs(wm[c]), tol_m2[c] = 1e-5 * w2[c];
    EXPECT_TRUE(all_within("merged mean", mean, wm, tol_mean));
    EXPECT_TRUE(all_within("merged m2", m2, w2, tol_m2));

    // Finalize and normalize == forward_train.
    std::vector<float> save_mean(C), save_invstd(C), rm(C, 0.0f), rv(C, 1.0f);
    batchnorm_moments_finalize(whole.channels, merged, 1e-5, save_mean.data(), save_invstd.data(),
                               {.mean = rm.data(), .var = rv.data(), .factor = 0.1});
    std::vector<float> y(x.size());
    batchnorm_forward_infer({.problem = whole, .eps = 1e-5, .x = x.data(), .mean = save_mean.data(),
                             .invstd = save_invstd.data(), .y = y.data()});
    const TrainResult direct = train(reference_impl(), whole, x, 1e-5);
    EXPECT_TRUE(all_close("save_mean", save_mean, direct.mean, 1e-6, 0.0));
    EXPECT_TRUE(all_close("save_invstd", save_invstd, direct.invstd, 1e-5, 0.0));
    std::vector<float> rm_direct(C), rv_direct(C);
    for (std::size_t c = 0; c < C; ++c) {  // direct ran with factor 0.5; recompute for 0.1
      rm_direct[c] = static_cast<float>(0.1 * wm[c]);
      rv_direct[c] = static_cast<float>(0.9 + 0.1 * w2[c] / (static_cast<double>(want.count) - 1));
    }
    EXPECT_TRUE(all_close("running_mean", rm, rm_direct, 1e-6, 0.0));
    EXPECT_TRUE(all_close("running_var", rv, rv_direct, 1e-5, 0.0));
    // y = (x - mean) * invstd with |mean| / std ~ 100: float32 cancellation allows ~1e-5.
    EXPECT_TRUE(all_close("y", y, direct.y, 1e-5, 2e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(Impls, ChanMerge, ::testing::ValuesIn(all_impls()), impl_name);

TEST(ChanMerge, MergingIntoAnEmptyPartialCopies) {
  std::vector<double> am(2, 5.0), a2(2, 5.0), bm{1.0, 2.0}, b2{3.0, 4.0};
  ChannelMoments a{.count = 0, .mean = am.data(), .m2 = a2.data()};
  batchnorm_moments_merge(2, a, {.count = 3, .mean = bm.data(), .m2 = b2.data()});
  EXPECT_EQ(a.count, 3);
  EXPECT_EQ(am, bm);
  EXPECT_EQ(a2, b2);
}

}  // namespace
}  // namespace bnorm::test
