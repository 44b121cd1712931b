// Oracle 1 of 3 (STYLE.md, habit 6): every fast implementation against the reference, over the
// table of cases in batchnorm_test_support.hpp. Implementations are called directly through
// their BatchNormImpl entry (no dispatch), with the workspace each one asks for.
//
// Tolerances: the reference accumulates in double and rounds once, so its outputs are within
// half an ulp of exact; a float kernel that sums in short blocks folded into double (see
// docs/batchnorm-math.md) stays within a few ulps of the quantities involved. We allow 1e-5
// relative to the scale of each output, which is loose for correct kernels and far below the
// error of any wrong formula, channel mix-up or missed tail element.
//
// Store policies (OutputStores): the table's tensors are small, so automatic stores are
// cached ones. Every run is repeated with streaming stores forced, which must give bitwise the
// same outputs: that tests the non-temporal code paths (a channels_first run's scalar head up
// to alignment and streamed body, the streamed channels_last rows), which otherwise run only
// on tensors beyond half the LLC or in DRAM, and it is what lets automatic choose by timing
// without making results depend on the cache.
#include <gtest/gtest.h>

#include <array>

#include "batchnorm_test_support.hpp"

namespace bnorm::test {
namespace {

constexpr double kRtol = 1e-5;

class FastVsReference : public ::testing::TestWithParam<ImplCase> {};

struct TrainOutputs {
  std::vector<float> y, save_mean, save_invstd, running_mean, running_var;
};

// One forward_train through `impl`. in_place: y is x's buffer. misaligned: every buffer starts
// 4 bytes past an aligned address.
TrainOutputs forward_train(const BatchNormImpl& impl, const BatchNormProblem& p,
                           const std::vector<float>& x, const std::vector<float>* gamma,
                           const std::vector<float>* beta, const std::vector<float>* running_mean,
                           const std::vector<float>* running_var, double factor, bool in_place,
                           bool misaligned, OutputStores stores) {
  const std::vector<float> zeros(static_cast<std::size_t>(p.channels), 0.0f);
  Buffer xb(x, misaligned), yb(std::vector<float>(x.size(), -7.0f), misaligned);
  Buffer gb(gamma ? *gamma : zeros, misaligned), bb(beta ? *beta : zeros, misaligned);
  Buffer mean(zeros, misaligned), invstd(zeros, misaligned);
  Buffer rm(running_mean ? *running_mean : zeros, misaligned);
  Buffer rv(running_var ? *running_var : zeros, misaligned);
  std::vector<std::byte> workspace = workspace_for(impl, p);
  impl.forward_train({.problem = p,
                      .eps = 1e-5,
                      .x = xb.data(),
                      .gamma = gamma ? gb.data() : nullptr,
                      .beta = beta ? bb.data() : nullptr,
                      .y = in_place ? xb.data() : yb.data(),
                      .save_mean = mean.data(),
                      .save_invstd = invstd.data(),
                      .running = {.mean = running_mean ? rm.data() : nullptr,
                                  .var = running_mean ? rv.data() : nullptr,
                                  .factor = factor},
                      .workspace = workspace,
                      .stores = stores});
  return {in_place ? xb.values() : yb.values(), mean.values(), invstd.values(), rm.values(),
          rv.values()};
}

TEST_P(FastVsReference, ForwardTrain) {
  const BatchNormImpl& impl = *GetParam().impl;
  const BatchNormProblem p = GetParam().problem();
  BNORM_REQUIRE_ACCEPTS(impl, p);
  const auto C = static_cast<std::size_t>(p.channels);
  const std::vector<float> x = random_input(p, 1);
  const std::vector<float> gamma = random_uniform(C, 2, 0.5f, 1.5f);
  const std::vector<float> beta = random_uniform(C, 3, -1.0f, 1.0f);
  const std::vector<float> rm0 = random_uniform(C, 4, -1.0f, 1.0f);
  const std::vector<float> rv0 = random_uniform(C, 5, 0.5f, 2.0f);
  for (bool affine : {true, false})
    for (double factor : {0.0, 0.1, 1.0})  // 0: no running update; 1.0: a cumulative first step
      for (int variant = 0; variant < 3; ++variant) {  // plain, y == x, misaligned
        const bool in_place = variant == 1, misaligned = variant == 2;
        SCOPED_TRACE(::testing::Message() << "affine=" << affine << " factor=" << factor
                                          << " in_place=" << in_place
                                          << " misaligned=" << misaligned);
        const bool running = factor != 0.0;
        auto run = [&](const BatchNormImpl& which, OutputStores stores) {
          return forward_train(which, p, x, affine ? &gamma : nullptr, affine ? &beta : nullptr,
                               running ? &rm0 : nullptr, running ? &rv0 : nullptr, factor,
                               in_place, misaligned, stores);
        };
        const TrainOutputs want = run(reference_impl(), OutputStores::automatic);
        const TrainOutputs got = run(impl, OutputStores::automatic);
        const TrainOutputs streamed = run(impl, OutputStores::streaming);
        EXPECT_TRUE(bitwise_equal("y streamed", streamed.y, got.y));
        EXPECT_TRUE(bitwise_equal("save_mean streamed", streamed.save_mean, got.save_mean));
        EXPECT_TRUE(bitwise_equal("save_invstd streamed", streamed.save_invstd, got.save_invstd));
        EXPECT_TRUE(bitwise_equal("running_var streamed", streamed.running_var, got.running_var));
        EXPECT_TRUE(all_close("y", got.y, want.y, kRtol, kRtol * std::max(1.0, max_abs(want.y))));
        EXPECT_TRUE(all_close("save_mean", got.save_mean, want.save_mean, kRtol,
                              kRtol * max_abs(x) * 0.1));
        EXPECT_TRUE(all_close("save_invstd", got.save_invstd, want.save_invstd, kRtol, 0.0));
        if (running) {
          EXPECT_TRUE(all_close("running_mean", got.running_mean, want.running_mean, kRtol, 1e-6));
          EXPECT_TRUE(all_close("running_var", got.running_var, want.running_var, kRtol, 0.0));
        } else {
          EXPECT_EQ(got.running_mean, std::vector<float>(C, 0.0f)) << "running stats written";
        }
      }
}

TEST_P(FastVsReference, ForwardInfer) {
  const BatchNormImpl& impl = *GetParam().impl;
  const BatchNormProblem p = GetParam().problem();
  BNORM_REQUIRE_ACCEPTS(impl, p);
  const auto C = static_cast<std::size_t>(p.channels);
  const std::vector<float> x = random_input(p, 11);
  const std::vector<float> gamma = random_uniform(C, 12, 0.5f, 1.5f);
  const std::vector<float> beta = random_uniform(C, 13, -1.0f, 1.0f);
  const std::vector<float> mean = random_uniform(C, 14, -2.0f, 2.0f);
  const std::vector<float> var = random_uniform(C, 15, 0.25f, 2.0f);
  std::vector<float> invstd(C);
  for (std::size_t c = 0; c < C; ++c) invstd[c] = static_cast<float>(1.0 / std::sqrt(var[c] + 1e-3));
  for (bool affine : {true, false})
    for (bool with_var : {true, false})
      for (int variant = 0; variant < 3; ++variant) {
        const bool in_place = variant == 1, misaligned = variant == 2;
        SCOPED_TRACE(::testing::Message() << "affine=" << affine << " with_var=" << with_var
                                          << " in_place=" << in_place
                                          << " misaligned=" << misaligned);
        auto run = [&](const BatchNormImpl& which, OutputStores stores) {
          Buffer xb(x, misaligned), yb(std::vector<float>(x.size(), -7.0f), misaligned);
          Buffer mb(mean, misaligned), vb(var, misaligned), ib(invstd, misaligned);
          Buffer gb(gamma, misaligned), bb(beta, misaligned);
          which.forward_infer({.problem = p,
                               .eps = 1e-3,
                               .x = xb.data(),
                               .mean = mb.data(),
                               .var = with_var ? vb.data() : nullptr,
                               .invstd = with_var ? nullptr : ib.data(),
                               .gamma = affine ? gb.data() : nullptr,
                               .beta = affine ? bb.data() : nullptr,
                               .y = in_place ? xb.data() : yb.data(),
                               .stores = stores});
          return in_place ? xb.values() : yb.values();
        };
        const std::vector<float> want = run(reference_impl(), OutputStores::automatic);
        const std::vector<float> got = run(impl, OutputStores::automatic);
        EXPECT_TRUE(bitwise_equal("y streamed", run(impl, OutputStores::streaming), got));
        // y = x * scale + shift: the rounding is relative to |x * scale| + |shift|, which the
        // test data keeps within a few times max |y|.
        EXPECT_TRUE(all_close("y", got, want, kRtol, 4 * kRtol * std::max(1.0, max_abs(want))));
      }
}

// Sums over each channel of |dy| and |dy * xhat|: the scale of dbeta and dgamma.
void channel_magnitudes(const BatchNormProblem& p, const std::vector<float>& x,
                        const std::vector<float>& dy, const std::vector<float>& mean,
                        const std::vector<float>& invstd, std::vector<double>& sum_abs_dy,
                        std::vector<double>& sum_abs_dy_xhat) {
  sum_abs_dy.assign(static_cast<std::size_t>(p.channels), 0.0);
  sum_abs_dy_xhat.assign(static_cast<std::size_t>(p.channels), 0.0);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto c = static_cast<std::size_t>(channel_of(p, i));
    sum_abs_dy[c] += std::abs(dy[i]);
    sum_abs_dy_xhat[c] += std::abs(dy[i] * (static_cast<double>(x[i]) - mean[c]) * invstd[c]);
  }
}

TEST_P(FastVsReference, Backward) {
  const BatchNormImpl& impl = *GetParam().impl;
  const BatchNormProblem p = GetParam().problem();
  BNORM_REQUIRE_ACCEPTS(impl, p);
  const auto C = static_cast<std::size_t>(p.channels);
  const std::vector<float> x = random_input(p, 21);
  const std::vector<float> dy = random_uniform(x.size(), 22, -1.0f, 1.0f);
  const std::vector<float> gamma = random_uniform(C, 23, 0.5f, 1.5f);
  // Nonzero starting values: parameter gradients accumulate (+=).
  const std::vector<float> dgamma0 = random_uniform(C, 24, -3.0f, 3.0f);
  const std::vector<float> dbeta0 = random_uniform(C, 25, -3.0f, 3.0f);

  // Batch statistics: those of x, as the reference forward computes them. Frozen: constants
  // unrelated to x (running statistics).
  std::vector<float> batch_mean(C), batch_invstd(C);
  {
    std::vector<float> y(x.size());
    std::vector<std::byte> none;
    reference_impl().forward_train({.problem = p, .eps = 1e-5, .x = x.data(), .y = y.data(),
                                    .save_mean = batch_mean.data(),
                                    .save_invstd = batch_invstd.data(), .workspace = none});
  }
  const std::vector<float> frozen_mean = random_uniform(C, 26, -1.0f, 1.0f);
  const std::vector<float> frozen_invstd = random_uniform(C, 27, 0.5f, 2.0f);

  for (BatchNormStatistics stats : {BatchNormStatistics::batch, BatchNormStatistics::frozen}) {
    const bool batch = stats == BatchNormStatistics::batch;
    const std::vector<float>& mean = batch ? batch_mean : frozen_mean;
    const std::vector<float>& invstd = batch ? batch_invstd : frozen_invstd;
    std::vector<double> mag_dbeta, mag_dgamma;
    channel_magnitudes(p, x, dy, mean, invstd, mag_dbeta, mag_dgamma);
    // dx = gamma * invstd * (dy - sum_dy/m - xhat * sum_dy_xhat/m): the terms, not the
    // result, set the rounding scale (with m = 2 the result is a tiny residue of them).
    double dx_scale = 1e-30;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const auto c = static_cast<std::size_t>(channel_of(p, i));
      const double m = static_cast<double>(p.values_per_channel());
      const double xhat = (static_cast<double>(x[i]) - mean[c]) * invstd[c];
      const double terms = batch ? std::abs(dy[i]) + mag_dbeta[c] / m + std::abs(xhat) * mag_dgamma[c] / m
                                 : std::abs(dy[i]);
      dx_scale = std::max(dx_scale, std::max(1.0, static_cast<double>(gamma[c])) * invstd[c] * terms);
    }
    std::vector<double> tol_dgamma(C), tol_dbeta(C);
    for (std::size_t c = 0; c < C; ++c) {
      tol_dgamma[c] = kRtol * (mag_dgamma[c] + std::abs(dgamma0[c]) + 1e-3);
      tol_dbeta[c] = kRtol * (mag_dbeta[c] + std::abs(dbeta0[c]) + 1e-3);
    }
    for (bool affine : {true, false})
      for (int bits = 0; bits < 8; ++bits) {
        const BatchNormGradMask mask{.dx = (bits & 1) != 0, .dgamma = (bits & 2) != 0,
                                     .dbeta = (bits & 4) != 0};
        // Affine off: no parameters, so no parameter gradients (docs/batchnorm-math.md).
        if (!affine && (mask.dgamma || mask.dbeta)) continue;
        for (int variant = 0; variant < 3; ++variant) {
          const bool in_place = variant == 1, misaligned = variant == 2;
          if (in_place && !mask.dx) continue;
          SCOPED_TRACE(::testing::Message()
                       << (batch ? "batch" : "frozen") << " affine=" << affine << " mask=dx:"
                       << mask.dx << ",dgamma:" << mask.dgamma << ",dbeta:" << mask.dbeta
                       << " in_place=" << in_place << " misaligned=" << misaligned);
          struct Grads { std::vector<float> dx, dgamma, dbeta; };
          auto run = [&](const BatchNormImpl& which, OutputStores stores) {
            Buffer xb(x, misaligned), dyb(dy, misaligned);
            Buffer dxb(std::vector<float>(x.size(), -7.0f), misaligned);
            Buffer mb(mean, misaligned), ib(invstd, misaligned), gb(gamma, misaligned);
            Buffer dgb(dgamma0, misaligned), dbb(dbeta0, misaligned);
            std::vector<std::byte> workspace = workspace_for(which, p);
            // Outputs that are masked off are passed as null: the kernel must not touch them.
            which.backward({.problem = p,
                            .statistics = stats,
                            .mask = mask,
                            .x = xb.data(),
                            .dy = dyb.data(),
                            .mean = mb.data(),
                            .invstd = ib.data(),
                            .gamma = affine ? gb.data() : nullptr,
                            .dx = mask.dx ? (in_place ? dyb.data() : dxb.data()) : nullptr,
                            .dgamma = mask.dgamma ? dgb.data() : nullptr,
                            .dbeta = mask.dbeta ? dbb.data() : nullptr,
                            .workspace = workspace,
                            .stores = stores});
            return Grads{in_place ? dyb.values() : dxb.values(), dgb.values(), dbb.values()};
          };
          const Grads want = run(reference_impl(), OutputStores::automatic);
          const Grads got = run(impl, OutputStores::automatic);
          const Grads streamed = run(impl, OutputStores::streaming);
          EXPECT_TRUE(bitwise_equal("dx streamed", streamed.dx, got.dx));
          EXPECT_TRUE(bitwise_equal("dgamma streamed", streamed.dgamma, got.dgamma));
          EXPECT_TRUE(bitwise_equal("dbeta streamed", streamed.dbeta, got.dbeta));
          if (mask.dx) {
            EXPECT_TRUE(all_close("dx", got.dx, want.dx, kRtol, kRtol * dx_scale));
          }
          if (mask.dgamma) EXPECT_TRUE(all_within("dgamma", got.dgamma, want.dgamma, tol_dgamma));
          else EXPECT_EQ(got.dgamma, dgamma0);
          if (mask.dbeta) EXPECT_TRUE(all_within("dbeta", got.dbeta, want.dbeta, tol_dbeta));
          else EXPECT_EQ(got.dbeta, dbeta0);
        }
      }
  }
}

TEST_P(FastVsReference, Moments) {
  const BatchNormImpl& impl = *GetParam().impl;
  const BatchNormProblem p = GetParam().problem();
  BNORM_REQUIRE_ACCEPTS(impl, p);
  const auto C = static_cast<std::size_t>(p.channels);
  const std::vector<float> x = random_input(p, 31);
  auto run = [&](const BatchNormImpl& which, bool misaligned) {
    Buffer xb(x, misaligned);
    std::vector<double> mean(C, -1.0), m2(C, -1.0);
    ChannelMoments out{.count = -1, .mean = mean.data(), .m2 = m2.data()};
    std::vector<std::byte> workspace = workspace_for(which, p);
    which.moments(p, xb.data(), out, workspace);
    return std::array<std::vector<double>, 2>{mean, m2};
  };
  const auto want = run(reference_impl(), false);
  for (bool misaligned : {false, true}) {
    const auto got = run(impl, misaligned);
    std::vector<double> tol_mean(C), tol_m2(C);
    for (std::size_t c = 0; c < C; ++c) {
      const double var = want[1][c] / static_cast<double>(p.values_per_channel());
      tol_mean[c] = 1e-6 * (std::abs(want[0][c]) + std::sqrt(var));
      tol_m2[c] = kRtol * want[1][c] + 1e-12;
    }
    EXPECT_TRUE(all_within("moments.mean", got[0], want[0], tol_mean)) << "misaligned=" << misaligned;
    EXPECT_TRUE(all_within("moments.m2", got[1], want[1], tol_m2)) << "misaligned=" << misaligned;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, FastVsReference, ::testing::ValuesIn(cross(fast_impls(), kernel_cases())),
                         impl_case_name);

// No fast implementation compiled in must not make the suite an error.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(FastVsReference);

}  // namespace
}  // namespace bnorm::test
